// The event reporter against a fake control plane: a small local HTTP server that plays
// POST /v1/agent/events (fails, refuses, then accepts). Time is injected: `sleep` advances a fake clock.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { AgentEvent } from "../../proto/agent";
import { Backoff } from "./backoff";
import { createControlPlaneClient } from "./control";
import { EventReporter, JOURNAL_FILE } from "./events";
import { createLogger } from "./log";
import { createMetrics } from "./metrics";

const logger = createLogger({ level: "silent" });
const ref = (nodeRunId: string, attempt = 1) => ({ runId: "run1", nodeRunId, nodeId: nodeRunId, attempt });

/** A fake control plane: answers each POST with the next scripted status (then 200), records accepted events. */
async function fakeControlPlane() {
  const script: { status: number; body?: unknown }[] = [];
  const accepted: AgentEvent[] = [];
  const requests: { status: number; events: AgentEvent[]; auth: string | undefined; bytes: number }[] = [];
  /** When set: the answer to a batch the script does not cover (e.g. a 400 for any batch holding a bad event). */
  const rules: { answer?: (events: AgentEvent[]) => { status: number; body?: unknown } | undefined } = {};
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const events = (JSON.parse(body) as { events: AgentEvent[] }).events;
      const next = script.shift() ?? rules.answer?.(events) ?? { status: 200 };
      requests.push({ status: next.status, events, auth: req.headers.authorization, bytes: Buffer.byteLength(body) });
      if (next.status === 200) accepted.push(...events);
      res.writeHead(next.status, { "content-type": "application/json" });
      res.end(JSON.stringify(next.body ?? (next.status === 200 ? { applied: events.length, ignored: 0 } : { error: { code: "unavailable", message: "down", details: [] } })));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, script, rules, accepted, requests, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/** Fake time: `sleep` records the delay and moves the clock. */
function fakeTime(start = 1_800_000_000_000) {
  const t = { now: start, delays: [] as number[] };
  return {
    t,
    clock: () => t.now,
    sleep: async (ms: number) => {
      t.delays.push(ms);
      t.now += ms;
      await new Promise((r) => setImmediate(r));
    },
  };
}

describe("event reporter (fake control plane)", () => {
  let dir: string;
  let cp: Awaited<ReturnType<typeof fakeControlPlane>>;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "agent-events-"));
    cp = await fakeControlPlane();
  });
  afterEach(async () => {
    await cp.close();
    await rm(dir, { recursive: true, force: true });
  });

  const open = (time: ReturnType<typeof fakeTime>, extra: Partial<Parameters<typeof EventReporter.open>[0]> = {}) =>
    EventReporter.open({
      stateDir: dir,
      client: createControlPlaneClient({ baseUrl: cp.url }),
      credential: "plc_secret",
      logger,
      clock: time.clock,
      sleep: time.sleep,
      backoff: new Backoff({ initialMs: 250, maxMs: 4000, random: () => 0 }),
      ...extra,
    });

  it("seq grows per attempt within a millisecond and across a restart, even with the clock standing still", async () => {
    const time = fakeTime();
    const a = open(time);
    for (let i = 0; i < 5; i++) a.report(ref("n1"), { type: "progress", counts: { total: 5, done: i, failed: 0, running: 1 } });
    a.report(ref("n2"), { type: "running" });
    a.close();
    const seqs1 = (await readFile(join(dir, JOURNAL_FILE), "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l).e as AgentEvent);
    const n1 = seqs1.filter((e) => e.nodeRunId === "n1").map((e) => e.seq);
    expect(n1).toEqual([0, 1, 2, 3, 4].map((i) => time.t.now * 1000 + i));
    expect(seqs1.find((e) => e.nodeRunId === "n2")!.seq).toBe(time.t.now * 1000);

    // Restart: same clock instant; the journal still holds the unsent events, so seq goes on from them.
    const b = open(time);
    expect(b.depth).toBe(6);
    b.report(ref("n1"), { type: "succeeded" });
    // Restart after the events were sent (journal empty): the clock term carries seq over.
    await b.flush();
    b.close();
    time.t.now += 1;
    const c = open(time);
    expect(c.depth).toBe(0);
    c.report(ref("n1"), { type: "succeeded", message: "again" });
    await c.flush();
    c.close();
    const all = cp.accepted.filter((e) => e.nodeRunId === "n1").map((e) => e.seq);
    expect(all).toHaveLength(7);
    for (let i = 1; i < all.length; i++) expect(all[i]).toBeGreaterThan(all[i - 1]!);
    // A new attempt starts its own sequence; seq stays a safe integer.
    expect(Number.isSafeInteger(all.at(-1))).toBe(true);
  });

  it("retries with exponential back-off through an outage, loses nothing, keeps order, and sends the credential", async () => {
    const time = fakeTime();
    const metrics = createMetrics();
    const r = open(time, { metrics });
    cp.script.push({ status: 503 }, { status: 502 }, { status: 500 }, { status: 503 }, { status: 429 });
    const ac = new AbortController();
    const loop = r.run(ac.signal);
    for (let i = 0; i < 3; i++) r.report(ref("a"), { type: i === 0 ? "running" : "progress", counts: { total: 3, done: i, failed: 0, running: 1 } });
    r.report(ref("b"), { type: "running" });
    // The first batch goes 250 ms after the first event; then 5 failures.
    while (cp.accepted.length < 4) await new Promise((res) => setImmediate(res));
    r.report(ref("a"), { type: "succeeded" });
    while (cp.accepted.length < 5) await new Promise((res) => setImmediate(res));
    ac.abort();
    await loop;
    expect(cp.requests.map((q) => q.status)).toEqual([503, 502, 500, 503, 429, 200, 200]);
    // The batching wait (250 ms), then back-off doubling from 250 ms to the 4 s cap (no jitter
    // injected); the last event ends an attempt, so it goes without the batching wait.
    expect(time.t.delays).toEqual([250, 250, 500, 1000, 2000, 4000]);
    expect(cp.requests.every((q) => q.auth === "Bearer plc_secret")).toBe(true);
    expect(cp.accepted.map((e) => `${e.nodeRunId}:${e.type}`)).toEqual(["a:running", "a:progress", "a:progress", "b:running", "a:succeeded"]);
    expect(r.depth).toBe(0);
    expect(await readFile(join(dir, JOURNAL_FILE), "utf8")).toBe("");
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/parallels_agent_events_sent_total 5/);
    expect(text).toMatch(/parallels_agent_event_batches_failed_total\{reason="503"\} 2/);
    r.close();
  });

  it("sends at 100 queued without waiting, in batches of at most 500", async () => {
    const time = fakeTime();
    const r = open(time);
    for (let i = 0; i < 1201; i++) r.report(ref(`n${i}`), { type: "running" });
    const left = await r.flush();
    expect(left).toBe(0);
    expect(cp.requests.map((q) => q.events.length)).toEqual([500, 500, 201]);
    r.close();
  });

  it("keeps unsent events in the journal across a crash and sends them after the restart", async () => {
    const time = fakeTime();
    const r = open(time);
    r.report(ref("x"), { type: "running" });
    r.report(ref("x"), { type: "succeeded" });
    // "crash": no flush, no close beyond the fd.
    r.close();
    const again = open(time);
    expect(again.depth).toBe(2);
    expect(await again.flush()).toBe(0);
    expect(cp.accepted.map((e) => e.type)).toEqual(["running", "succeeded"]);
    again.close();
    expect(open(time).depth).toBe(0);
  });

  it("drops the events a 403 names as foreign work (logged), sends the rest, and does not retry them", async () => {
    const time = fakeTime();
    const metrics = createMetrics();
    const r = open(time, { metrics });
    r.report(ref("mine"), { type: "running" });
    r.report(ref("theirs"), { type: "succeeded" });
    r.report(ref("mine"), { type: "succeeded" });
    cp.script.push({
      status: 403,
      body: {
        error: {
          code: "forbidden",
          message: "the batch reports on work this cluster was not given; nothing was applied",
          details: [{ path: "events[1].nodeRunId", message: 'node run "theirs" is not work of this cluster' }],
        },
      },
    });
    expect(await r.flush()).toBe(0);
    expect(cp.requests.map((q) => [q.status, q.events.map((e) => e.nodeRunId)])).toEqual([
      [403, ["mine", "theirs", "mine"]],
      [200, ["mine", "mine"]],
    ]);
    expect(await metrics.registry.metrics()).toMatch(/parallels_agent_events_dropped_total\{reason="foreign"\} 1/);
    // A 403 without details drops the whole batch rather than retrying forever.
    r.report(ref("ghost"), { type: "running" });
    cp.script.push({ status: 403 });
    expect(await r.flush()).toBe(0);
    expect(cp.requests).toHaveLength(3);
    r.close();
  });

  it("a 400 that names no event splits the batch: only the event refused alone is dropped, the rest are sent in order", async () => {
    const time = fakeTime();
    const metrics = createMetrics();
    const r = open(time, { metrics });
    for (const id of ["a", "b", "bad", "c", "d"]) r.report(ref(id), { type: "running" });
    cp.rules.answer = (events) => (events.some((e) => e.nodeRunId === "bad") ? { status: 400, body: { error: { code: "invalid_request", message: "invalid request body", details: [] } } } : undefined);
    expect(await r.flush()).toBe(0);
    expect(cp.accepted.map((e) => e.nodeRunId)).toEqual(["a", "b", "c", "d"]);
    expect(cp.requests.filter((q) => q.status === 400).map((q) => q.events.map((e) => e.nodeRunId))).toEqual([["a", "b", "bad", "c", "d"], ["a", "b", "bad"], ["bad"]]);
    expect(await metrics.registry.metrics()).toMatch(/parallels_agent_events_dropped_total\{reason="rejected"\} 1/);
    r.close();
  });

  it("caps a batch at about 512 KB of JSON (the control plane refuses bodies over 1 MiB)", async () => {
    const time = fakeTime();
    const r = open(time);
    for (let i = 0; i < 500; i++) r.report(ref(`n${i}`), { type: "failed", message: "x".repeat(4000) });
    expect(await r.flush()).toBe(0);
    expect(cp.requests.length).toBeGreaterThan(1);
    for (const q of cp.requests) expect(q.bytes).toBeLessThanOrEqual(512 * 1024);
    expect(cp.accepted).toHaveLength(500);
    r.close();
  });

  it("hands the DAG runs the control plane says a batch ended to onEndedRuns", async () => {
    const time = fakeTime();
    const ended: unknown[] = [];
    const r = open(time, { onEndedRuns: (runs) => ended.push(...runs) });
    r.report(ref("x"), { type: "succeeded" });
    cp.script.push({ status: 200, body: { applied: 1, ignored: 0, endedRuns: [{ runId: "run1", status: "succeeded" }] } });
    expect(await r.flush()).toBe(0);
    r.report(ref("y"), { type: "running" });
    expect(await r.flush()).toBe(0); // an answer without endedRuns (older control plane): nothing
    expect(ended).toEqual([{ runId: "run1", status: "succeeded" }]);
    r.close();
  });

  it("keeps a batch in the journal when the runs it ended cannot be recorded, and sends it again", async () => {
    const time = fakeTime();
    let failNext = true;
    const ended: unknown[] = [];
    const r = open(time, {
      onEndedRuns: (runs) => {
        if (failNext) {
          failNext = false;
          throw new Error("disk full");
        }
        ended.push(...runs);
      },
    });
    r.report(ref("x"), { type: "succeeded" });
    const answer = { status: 200, body: { applied: 1, ignored: 0, endedRuns: [{ runId: "run1", status: "succeeded" }] } };
    cp.script.push(answer, answer);
    expect(await r.flush()).toBe(0);
    // Sent twice: the first answer's news could not be kept, so the events stayed to be sent again.
    expect(cp.requests.map((q) => q.events.map((e) => e.type))).toEqual([["succeeded"], ["succeeded"]]);
    expect(ended).toEqual([{ runId: "run1", status: "succeeded" }]);
    r.close();
  });

  it("an invalid report is dropped at once (never throws); an over-long message is cut, not dropped", () => {
    const time = fakeTime();
    const r = open(time);
    expect(() => r.report(ref("n"), { type: "exploded" as never })).not.toThrow();
    r.report(ref("n"), { type: "failed", message: "x".repeat(10_000) });
    expect(r.depth).toBe(1);
    r.close();
  });
});
