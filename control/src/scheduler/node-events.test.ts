import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AgentEventType } from "../../../proto/agent";
import { isAttemptOutcome, NODE_STATUSES, TERMINAL_NODE_STATUSES } from "../../../proto/status";
import { applyEvent, applyEvents, type NodeEvent, type NodeProgress } from "./node-events";

const dispatched: NodeProgress = {
  status: "dispatched",
  attempt: 1,
  lastSeq: 0,
  partitions: { total: 0, done: 0, failed: 0, running: 0 },
  mlflowRunId: null,
  message: null,
  final: false,
  failedPartitions: null,
  partitionFailures: null,
  imageRef: null,
  cachedFrom: null,
  buildingSince: null,
  startedAt: null,
  finishedAt: null,
};
const ev = (seq: number, type: NodeEvent["type"], extra: Partial<NodeEvent> = {}): NodeEvent => ({ attempt: 1, seq, type, at: 1000 + seq, ...extra });
const counts = (done: number, running: number) => ({ total: 4, done, failed: 0, running });

describe("applyEvent", () => {
  it("moves a node through its attempt: running starts it, progress counts, succeeded ends it", () => {
    const running = applyEvent(dispatched, ev(1, "running", { counts: counts(0, 4), mlflowRunId: "m1" }));
    expect(running).toEqual({ ...dispatched, status: "running", lastSeq: 1, partitions: counts(0, 4), mlflowRunId: "m1", startedAt: 1001 });
    const progress = applyEvent(running, ev(2, "progress", { counts: counts(3, 1) }));
    expect(progress).toEqual({ ...running, lastSeq: 2, partitions: counts(3, 1) });
    const done = applyEvent(progress, ev(3, "succeeded", { counts: counts(4, 0) }));
    expect(done).toEqual({ ...progress, status: "succeeded", lastSeq: 3, partitions: counts(4, 0), finishedAt: 1003 });
  });

  it("leaves the status to accepted and progress, and counts built as building", () => {
    expect(applyEvent(dispatched, ev(1, "accepted"))).toEqual({ ...dispatched, lastSeq: 1 });
    expect(applyEvent(dispatched, ev(1, "progress"))).toEqual({ ...dispatched, lastSeq: 1 });
    expect(applyEvent(dispatched, ev(1, "built")).status).toBe("building");
  });

  it("keeps the first start, and an MLflow run id or message until another replaces it", () => {
    const started = applyEvent(dispatched, ev(1, "running", { mlflowRunId: "m1", message: "parameter warnings: x" }));
    const again = applyEvent(started, ev(2, "running"));
    expect(again).toMatchObject({ startedAt: 1001, mlflowRunId: "m1", message: "parameter warnings: x" });
    expect(applyEvent(again, ev(3, "failed", { message: "exit code 3" }))).toMatchObject({ status: "failed", message: "exit code 3", mlflowRunId: "m1", finishedAt: 1003 });
  });

  it("ignores another attempt's event, and one whose seq is not above the last applied (the same object comes back)", () => {
    const at5 = { ...dispatched, status: "running" as const, attempt: 2, lastSeq: 5 };
    expect(applyEvent(at5, ev(9, "succeeded"))).toBe(at5); // attempt 1
    expect(applyEvent(at5, ev(9, "succeeded", { attempt: 3 }))).toBe(at5); // not dispatched yet
    expect(applyEvent(at5, ev(5, "succeeded", { attempt: 2 }))).toBe(at5);
    expect(applyEvent(at5, ev(4, "progress", { attempt: 2, counts: counts(1, 1) }))).toBe(at5);
    expect(applyEvent(at5, ev(6, "succeeded", { attempt: 2 })).status).toBe("succeeded");
  });

  it("never moves a node whose attempt is over: a finished attempt stays finished, an abandoned one ignores its late report", () => {
    for (const status of TERMINAL_NODE_STATUSES) {
      const over = { ...dispatched, status };
      for (const type of AgentEventType.options) expect(applyEvent(over, ev(1, type, { counts: counts(4, 0) }))).toBe(over);
    }
  });
});

describe("waiting for an image", () => {
  it("the first `building` says since when and which image; `built` keeps them; the image stays with the attempt", () => {
    const building = applyEvent(dispatched, ev(1, "building", { imageRef: "reg/ml/env:aa", message: "building the environment" }));
    expect(building).toMatchObject({ status: "building", imageRef: "reg/ml/env:aa", buildingSince: 1001, message: "building the environment" });
    // The project image after the environment's: another image, the same wait.
    const next = applyEvent(building, ev(2, "building", { imageRef: "reg/ml/project-x:bb" }));
    expect(next).toMatchObject({ status: "building", imageRef: "reg/ml/project-x:bb", buildingSince: 1001 });
    const built = applyEvent(next, ev(3, "built", { imageRef: "reg/ml/project-x:bb@sha256:cc" }));
    expect(built).toMatchObject({ status: "building", imageRef: "reg/ml/project-x:bb@sha256:cc", buildingSince: 1001 });
    expect(applyEvent(built, ev(4, "running"))).toMatchObject({ status: "running", imageRef: "reg/ml/project-x:bb@sha256:cc", buildingSince: 1001, startedAt: 1004 });
    // A failed build fails the node with its reason.
    expect(applyEvent(next, ev(3, "failed", { message: "building the image failed at RUN …" }))).toMatchObject({
      status: "failed",
      message: "building the image failed at RUN …",
      buildingSince: 1001,
    });
  });
});

describe("a final failure", () => {
  it("a `failed` event that says `final` makes the failure final; `final` on other events, or a plain failure, does not", () => {
    expect(applyEvent(dispatched, ev(1, "failed", { final: true })).final).toBe(true);
    expect(applyEvent(dispatched, ev(1, "failed")).final).toBe(false);
    expect(applyEvent(dispatched, ev(1, "running", { final: true })).final).toBe(false);
  });
});

describe("applyEvents", () => {
  it("applies a batch in seq order whatever order it came in, and lists what changed the node", () => {
    const batch = [ev(3, "succeeded"), ev(1, "running"), ev(2, "progress", { counts: counts(2, 2) }), ev(2, "progress", { counts: counts(1, 3) })];
    const { node, applied } = applyEvents(dispatched, batch);
    expect(node).toEqual({ ...dispatched, status: "succeeded", lastSeq: 3, partitions: counts(2, 2), startedAt: 1001, finishedAt: 1003 });
    expect(applied).toEqual([batch[1], batch[2], batch[0]]); // the second seq 2 is a duplicate
  });
});

describe("applyEvent: a cache hit", () => {
  it("a succeeded event naming cachedFrom makes the node cached, once", () => {
    const from = { runId: "r0", nodeRunId: "n0", mlflowRunId: "m0" };
    const running = applyEvent(dispatched, ev(1, "accepted"));
    const cached = applyEvent(running, ev(2, "succeeded", { cachedFrom: from, mlflowRunId: "child" }));
    expect(cached).toMatchObject({ status: "cached", cachedFrom: from, mlflowRunId: "child", finishedAt: 1002 });
    // A replay of the same report, or a late one, changes nothing.
    expect(applyEvent(cached, ev(2, "succeeded", { cachedFrom: from }))).toBe(cached);
    expect(applyEvent(cached, ev(3, "failed"))).toBe(cached);
    // cachedFrom on any other event type is not a hit.
    expect(applyEvent(running, ev(2, "running", { cachedFrom: from })).status).toBe("running");
  });
});

// ── Properties ──────────────────────────────────────────────────────────────────────────────────
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });
const countsArb = fc.record({ total: fc.nat(9), done: fc.nat(9), failed: fc.nat(9), running: fc.nat(9) });
const nodeArb: fc.Arbitrary<NodeProgress> = fc.record({
  status: fc.constantFrom(...NODE_STATUSES),
  attempt: fc.integer({ min: 1, max: 3 }),
  lastSeq: fc.nat(5),
  partitions: countsArb,
  mlflowRunId: fc.option(fc.string({ maxLength: 3 })),
  message: fc.option(fc.string({ maxLength: 3 })),
  final: fc.boolean(),
  failedPartitions: fc.constant(null),
  partitionFailures: fc.constant(null),
  imageRef: fc.option(fc.string({ maxLength: 3 })),
  cachedFrom: fc.constant(null),
  buildingSince: fc.option(fc.nat()),
  startedAt: fc.option(fc.nat()),
  finishedAt: fc.option(fc.nat()),
});
const eventArb = (seq: number): fc.Arbitrary<NodeEvent> =>
  fc.record(
    {
      attempt: fc.integer({ min: 1, max: 3 }),
      seq: fc.constant(seq),
      type: fc.constantFrom(...AgentEventType.options),
      at: fc.nat(),
      counts: maybe(countsArb),
      mlflowRunId: maybe(fc.string({ maxLength: 3 })),
      message: maybe(fc.string({ maxLength: 3 })),
      cachedFrom: maybe(fc.constant({ runId: "r0", nodeRunId: "n0", mlflowRunId: "m0" })),
    },
    { requiredKeys: ["attempt", "seq", "type", "at"] },
  );
/** An attempt's events as an agent sends them: each seq once (in any order, with other attempts' mixed in). */
const eventsArb = fc.uniqueArray(fc.integer({ min: 1, max: 20 }), { maxLength: 12 }).chain((seqs) => fc.tuple(...seqs.map(eventArb)));

describe("applyEvents properties", () => {
  it("never changes a node whose attempt is over", () => {
    fc.assert(
      fc.property(nodeArb, fc.constantFrom(...TERMINAL_NODE_STATUSES), eventsArb, (node, status, events) => {
        const over = { ...node, status };
        expect(applyEvents(over, events)).toEqual({ node: over, applied: [] });
      }),
    );
  });

  it("is idempotent: replaying a batch (or any part of it) changes nothing", () => {
    fc.assert(
      fc.property(nodeArb, eventsArb, fc.nat(), (node, events, cut) => {
        const once = applyEvents(node, events).node;
        expect(applyEvents(once, events)).toEqual({ node: once, applied: [] });
        const part = events.slice(0, cut % (events.length + 1));
        expect(applyEvents(once, part).node).toBe(once);
      }),
    );
  });

  it("lets seq order win: any order of the same events leaves the node the same", () => {
    fc.assert(
      fc.property(
        nodeArb,
        eventsArb.chain((events) => fc.tuple(fc.constant(events), fc.shuffledSubarray(events, { minLength: events.length }))),
        (node, [events, shuffled]) => {
          expect(applyEvents(node, shuffled).node).toEqual(applyEvents(node, events).node);
        },
      ),
    );
  });

  it("only moves forward: the same attempt, a higher seq for every applied event, and nothing once over", () => {
    fc.assert(
      fc.property(nodeArb, eventsArb, (node, events) => {
        const { node: after, applied } = applyEvents(node, events);
        expect(after.attempt).toBe(node.attempt);
        expect(applied.every((e) => e.attempt === node.attempt)).toBe(true);
        expect(applied.map((e) => e.seq)).toEqual([...applied.map((e) => e.seq)].sort((a, b) => a - b));
        expect(after.lastSeq).toBe(applied.length > 0 ? applied.at(-1)!.seq : node.lastSeq);
        // Nothing was applied after the event that ended the attempt.
        const end = applied.findIndex((e) => isAttemptOutcome(e.type));
        if (end >= 0) expect(end).toBe(applied.length - 1);
      }),
    );
  });
});
