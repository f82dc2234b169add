import { describe, expect, it } from "vitest";
import type { AgentEvent } from "../../proto/agent";
import type { WorkCancel, WorkStart } from "../../proto/messages";
import type { AttemptReport, Executor } from "./executor/types";
import { createLogger } from "./log";
import { unreadableStart } from "./work-message";
import { ShuttingDown, createWorkHandler } from "./work";

const logger = createLogger({ level: "silent" });
const start = (nodeId: string, attempt = 1): WorkStart => ({
  type: "start",
  runId: "r1",
  nodeRunId: `r1-${nodeId}`,
  nodeId,
  attempt,
  dag: { name: "d", version: 1 },
  experiment: "d",
  node: { id: nodeId, project: { uri: "examples/noop" } } as WorkStart["node"],
  params: {},
  upstream: [],
  mlflowParentRunId: null,
});
const cancel = (nodeId: string, attempt = 1): WorkCancel => ({ type: "cancel", runId: "r1", nodeRunId: `r1-${nodeId}`, nodeId, attempt });

/** A controllable executor: attempts run until `finish(nodeId)`. */
function fakeExecutor() {
  const running = new Set<string>();
  const calls: string[] = [];
  const ex: Executor & { finish(id: string): void } = {
    async start(w) {
      calls.push(`start ${w.nodeId}`);
      running.add(w.nodeId);
    },
    async cancel(w, reporter) {
      calls.push(`cancel ${w.nodeId}`);
      running.delete(w.nodeId);
      reporter.report({ type: "cancelled" });
    },
    async reconcile() {
      return [];
    },
    async runEnded() {},
    running: () => running.size,
    async close() {},
    finish: (id) => void running.delete(id),
  };
  return { ex, calls };
}

describe("work handler", () => {
  it("reports accepted, runs at most maxConcurrent attempts, and starts a waiting one when room frees up", async () => {
    const { ex, calls } = fakeExecutor();
    const reports: (AttemptReport & { nodeId: string })[] = [];
    const h = createWorkHandler({ executor: ex, reporterFor: (ref) => ({ report: (e) => reports.push({ ...e, nodeId: ref.nodeId }) }), maxConcurrent: 2, logger, pollMs: 10_000 });
    const signal = new AbortController().signal;
    await h.handleStart(start("a"), signal);
    await h.handleStart(start("b"), signal);
    let cDone = false;
    const c = h.handleStart(start("c"), signal).then(() => (cDone = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(cDone).toBe(false);
    expect(h.waiting()).toBe(1);
    expect(reports.map((r) => `${r.nodeId}:${r.type}`)).toEqual(["a:accepted", "b:accepted", "c:accepted"]);
    ex.finish("a");
    h.wake(); // main wakes the handler when an attempt reports it finished
    await c;
    expect(calls).toEqual(["start a", "start b", "start c"]);
  });

  it("a cancel releases a start still waiting for room without starting it; shutdown hands waiting starts back", async () => {
    const { ex, calls } = fakeExecutor();
    const h = createWorkHandler({ executor: ex, reporterFor: () => ({ report: () => {} }), maxConcurrent: 1, logger, pollMs: 10_000 });
    const ac = new AbortController();
    await h.handleStart(start("a"), ac.signal);
    const b = h.handleStart(start("b"), ac.signal);
    await new Promise((r) => setTimeout(r, 10));
    await h.handleCancel(cancel("b"));
    await b; // resolves: the message is acked, nothing started
    expect(calls).toEqual(["start a", "cancel b"]);
    const c = h.handleStart(start("c"), ac.signal);
    await new Promise((r) => setTimeout(r, 10));
    ac.abort();
    await expect(c).rejects.toBeInstanceOf(ShuttingDown);
  });

  it("a start delivered again while the first delivery is handled joins it (one executor call)", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let starts = 0;
    const ex = {
      ...fakeExecutor().ex,
      start: async () => {
        starts++;
        await gate;
      },
    };
    const events: Partial<AgentEvent>[] = [];
    const h = createWorkHandler({ executor: ex, reporterFor: () => ({ report: (e) => events.push(e) }), maxConcurrent: 4, logger });
    const signal = new AbortController().signal;
    const first = h.handleStart(start("a"), signal);
    const again = h.handleStart(start("a"), signal);
    release();
    await Promise.all([first, again]);
    expect(starts).toBe(1);
    expect(events).toHaveLength(1);
  });

  it("starts arriving together never take more room than maxConcurrent (the check and the taking are one step)", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const entered: string[] = [];
    const ex = {
      ...fakeExecutor().ex,
      start: async (w: WorkStart) => {
        entered.push(w.nodeId);
        await gate;
      },
      running: () => 0,
    };
    const h = createWorkHandler({ executor: ex, reporterFor: () => ({ report: () => {} }), maxConcurrent: 2, logger, pollMs: 10_000 });
    const signal = new AbortController().signal;
    const all = ["a", "b", "c"].map((id) => h.handleStart(start(id), signal));
    await new Promise((r) => setTimeout(r, 20));
    expect(entered).toEqual(["a", "b"]);
    expect(h.waiting()).toBe(1);
    release();
    h.wake();
    await Promise.all(all);
    expect(entered).toEqual(["a", "b", "c"]);
  });

  it("giving up a start records it through the executor's abandon, or reports it failed when the executor has none", async () => {
    const abandoned: string[] = [];
    const reports: Partial<AgentEvent>[] = [];
    const withAbandon = { ...fakeExecutor().ex, abandon: async (w: WorkStart, message: string) => void abandoned.push(`${w.nodeId}: ${message}`) };
    await createWorkHandler({ executor: withAbandon, reporterFor: () => ({ report: (e) => reports.push(e) }), maxConcurrent: 1, logger }).giveUpStart(start("a"), "gave up");
    expect(abandoned).toEqual(["a: gave up"]);
    expect(reports).toEqual([]);
    await createWorkHandler({ executor: fakeExecutor().ex, reporterFor: () => ({ report: (e) => reports.push(e) }), maxConcurrent: 1, logger }).giveUpStart(start("b"), "gave up");
    expect(reports).toEqual([{ type: "failed", message: "gave up" }]);
  });

  it("a start message that fails validation is reported failed only when it names its attempt", () => {
    expect(unreadableStart({ type: "start", runId: "r", nodeRunId: "r-a", nodeId: "a", attempt: 2, node: "???" }, "start")).toEqual({ runId: "r", nodeRunId: "r-a", nodeId: "a", attempt: 2 });
    expect(unreadableStart({ nodeRunId: "r-a", attempt: 1 }, "start")).toMatchObject({ nodeRunId: "r-a", attempt: 1 });
    expect(unreadableStart({ type: "cancel", nodeRunId: "r-a", attempt: 1 }, "cancel")).toBeUndefined(); // its attempt may be running
    expect(unreadableStart({ nodeRunId: "r-a", attempt: "1" }, "start")).toBeUndefined();
    expect(unreadableStart({ nodeRunId: "", attempt: 1 }, "start")).toBeUndefined();
    expect(unreadableStart("not json", "start")).toBeUndefined();
  });
});
