import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { WorkStartSchema } from "../../proto/messages";
import { call, outboxRows, sampleDag, unique, workspace } from "./harness";

async function sha256(text: string) {
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** A workspace with a registered agent and the sample DAG `prep → count → merge`, with `cache` as given. */
async function setup(cache: Record<string, unknown>) {
  const ws = await workspace();
  const created = await call("POST", "/v1/clusters", { token: ws.admin, body: { name: "local", kind: "local" } });
  const credential = `plc_${unique("agent")}`;
  await env.DB.prepare("UPDATE clusters SET agent_credential_hash = ?, registered_at = ?, bootstrap_token_hash = NULL WHERE id = ?")
    .bind(await sha256(credential), Date.now(), created.body.cluster.id)
    .run();
  const dag = unique("wc");
  const doc = sampleDag(dag, cache);
  expect((await call("POST", "/v1/dags", { token: ws.write, body: doc })).status).toBe(201);
  return { ws, credential, dag };
}

let seq = 0;
const ev = (nodeRunId: string, attempt: number, type: string, extra: Record<string, unknown> = {}) => ({ nodeRunId, attempt, seq: ++seq, type, at: Date.now(), ...extra });
const report = async (credential: string, list: Record<string, unknown>[]) => expect((await call("POST", "/v1/agent/events", { token: credential, body: { events: list } })).status).toBe(200);
const ask = (credential: string, body: Record<string, unknown>) => call("POST", "/v1/agent/cache", { token: credential, body });
const get = async (token: string, id: string) => (await call("GET", `/v1/runs/${id}`, { token })).body;
const node = (run: any, id: string) => run.nodes.find((n: any) => n.nodeId === id);
const statuses = (run: any) => Object.fromEntries(run.nodes.map((n: any) => [n.nodeId, n.status]));
const keyOf = async (s: string) => `v1:${await sha256(s)}`;
const storedKey = async (nodeRunId: string) => (await env.DB.prepare("SELECT cache_key FROM node_runs WHERE id = ?").bind(nodeRunId).first<{ cache_key: string | null }>())?.cache_key;

describe("cache: POST /v1/agent/cache and the cached status", () => {
  it("a miss stores the key; once that node run succeeded, the same key in a later run is a hit, reported cached with where it comes from", async () => {
    const s = await setup({ cache: true });
    const key = await keyOf(unique("prep"));
    const first = (await call("POST", "/v1/runs", { token: s.ws.write, body: { dag: s.dag } })).body;
    // The DAG-wide `cache` reaches the agent in the node of the start message.
    const start = WorkStartSchema.parse(JSON.parse((await outboxRows(first.id))[0]!.payload));
    expect(start.node.cache).toBe(true);

    const miss = await ask(s.credential, { nodeRunId: `${first.id}-prep`, attempt: 1, key });
    expect(miss).toMatchObject({ status: 200, body: { hit: null } });
    // Asked again (a redelivered start): the same answer, the same state.
    expect((await ask(s.credential, { nodeRunId: `${first.id}-prep`, attempt: 1, key })).body).toEqual({ hit: null });
    expect(await storedKey(`${first.id}-prep`)).toBe(key);
    await report(s.credential, [ev(`${first.id}-prep`, 1, "running", { mlflowRunId: "m-prep", mlflowParentRunId: "p1" }), ev(`${first.id}-prep`, 1, "succeeded")]);

    const second = (await call("POST", "/v1/runs", { token: s.ws.write, body: { dag: s.dag } })).body;
    const hit = await ask(s.credential, { nodeRunId: `${second.id}-prep`, attempt: 1, key });
    expect(hit.status).toBe(200);
    expect(hit.body.hit).toMatchObject({ runId: first.id, nodeRunId: `${first.id}-prep`, mlflowRunId: "m-prep" });
    expect(Date.parse(hit.body.hit.finishedAt)).toBeGreaterThan(Date.now() - 60_000);
    const cachedFrom = { runId: first.id, nodeRunId: `${first.id}-prep`, mlflowRunId: "m-prep" };
    const cachedEvent = ev(`${second.id}-prep`, 1, "succeeded", { cachedFrom, mlflowRunId: "m-prep-cached", mlflowParentRunId: "p2" });
    await report(s.credential, [cachedEvent]);
    // Reported twice (at-least-once): nothing changes.
    const replay = await call("POST", "/v1/agent/events", { token: s.credential, body: { events: [cachedEvent] } });
    expect(replay.body).toMatchObject({ applied: 0, ignored: 1 });

    const run = await get(s.ws.read, second.id);
    expect(statuses(run)).toEqual({ prep: "cached", count: "dispatched", merge: "pending" });
    expect(run.counters).toMatchObject({ cached: 1, dispatched: 1 });
    const prep = run.nodes.find((n: any) => n.nodeId === "prep");
    expect(prep).toMatchObject({ cachedFrom, reusedFrom: null, mlflowRunId: "m-prep-cached" });
    // A cached node counts as done: the run goes on and ends succeeded.
    await report(s.credential, [ev(`${second.id}-count`, 1, "succeeded", { mlflowRunId: "m-c" })]);
    await report(s.credential, [ev(`${second.id}-merge`, 1, "succeeded", { mlflowRunId: "m-m" })]);
    expect((await get(s.ws.read, second.id)).status).toBe("succeeded");
    // A cached node run is never itself a hit (the result's age counts from when it was made).
    const third = (await call("POST", "/v1/runs", { token: s.ws.write, body: { dag: s.dag } })).body;
    expect((await ask(s.credential, { nodeRunId: `${third.id}-prep`, attempt: 1, key })).body.hit.nodeRunId).toBe(`${first.id}-prep`);
  });

  it("a hit older than maxAge is no hit; nor one of another workspace; nor for a node that does not cache", async () => {
    const s = await setup({ nodes: sampleDag("x").nodes.map((n: any) => (n.id === "prep" ? { ...n, cache: { maxAge: "1h" } } : n)) });
    const key = await keyOf(unique("prep"));
    const first = (await call("POST", "/v1/runs", { token: s.ws.write, body: { dag: s.dag } })).body;
    expect(WorkStartSchema.parse(JSON.parse((await outboxRows(first.id))[0]!.payload)).node.cache).toEqual({ maxAge: "1h" });
    expect((await ask(s.credential, { nodeRunId: `${first.id}-prep`, attempt: 1, key })).body).toEqual({ hit: null });
    await report(s.credential, [ev(`${first.id}-prep`, 1, "succeeded", { mlflowRunId: "m-prep" })]);
    // count does not cache: even its own key's hit is none.
    const countKey = await keyOf(unique("count"));
    await ask(s.credential, { nodeRunId: `${first.id}-count`, attempt: 1, key: countKey });
    await report(s.credential, [ev(`${first.id}-count`, 1, "succeeded", { mlflowRunId: "m-count" })]);

    const second = (await call("POST", "/v1/runs", { token: s.ws.write, body: { dag: s.dag } })).body;
    expect((await ask(s.credential, { nodeRunId: `${second.id}-prep`, attempt: 1, key })).body.hit).toMatchObject({ nodeRunId: `${first.id}-prep` });
    // count has no `cache`: its key matching a succeeded node run is still no hit.
    expect((await ask(s.credential, { nodeRunId: `${second.id}-count`, attempt: 1, key: countKey })).body).toEqual({ hit: null });
    // 59 minutes: still a hit; 61: no longer.
    await env.DB.prepare("UPDATE node_runs SET finished_at = ? WHERE id = ?")
      .bind(Date.now() - 59 * 60_000, `${first.id}-prep`)
      .run();
    expect((await ask(s.credential, { nodeRunId: `${second.id}-prep`, attempt: 1, key })).body.hit).not.toBeNull();
    await env.DB.prepare("UPDATE node_runs SET finished_at = ? WHERE id = ?")
      .bind(Date.now() - 61 * 60_000, `${first.id}-prep`)
      .run();
    expect((await ask(s.credential, { nodeRunId: `${second.id}-prep`, attempt: 1, key })).body).toEqual({ hit: null });

    // Another workspace with the same DAG and key: nothing of this one's.
    const other = await setup({ cache: true });
    const theirs = (await call("POST", "/v1/runs", { token: other.ws.write, body: { dag: other.dag } })).body;
    expect((await ask(other.credential, { nodeRunId: `${theirs.id}-prep`, attempt: 1, key: countKey })).body).toEqual({ hit: null });
  });

  it("a retry makes its own key; resuming a run reuses a cached node from the node run that made its result", async () => {
    const s = await setup({ cache: true });
    const key = await keyOf(unique("prep"));
    const first = (await call("POST", "/v1/runs", { token: s.ws.write, body: { dag: s.dag } })).body;
    await ask(s.credential, { nodeRunId: `${first.id}-prep`, attempt: 1, key });
    await report(s.credential, [ev(`${first.id}-prep`, 1, "succeeded", { mlflowRunId: "m-prep" })]);

    const second = (await call("POST", "/v1/runs", { token: s.ws.write, body: { dag: s.dag } })).body;
    const from = { runId: first.id, nodeRunId: `${first.id}-prep`, mlflowRunId: "m-prep" };
    await report(s.credential, [ev(`${second.id}-prep`, 1, "succeeded", { cachedFrom: from, mlflowRunId: "m-prep-cached" })]);
    // count (retries: 1) fails once: its next attempt starts without the first one's key.
    await ask(s.credential, { nodeRunId: `${second.id}-count`, attempt: 1, key: await keyOf("count") });
    expect(await storedKey(`${second.id}-count`)).toBe(await keyOf("count"));
    await report(s.credential, [ev(`${second.id}-count`, 1, "failed", { mlflowRunId: "m-c1" })]);
    expect(node(await get(s.ws.read, second.id), "count")).toMatchObject({ status: "dispatched", attempt: 2 });
    expect(await storedKey(`${second.id}-count`)).toBeNull();
    await report(s.credential, [ev(`${second.id}-count`, 2, "failed", { mlflowRunId: "m-c2" })]);
    expect((await get(s.ws.read, second.id)).status).toBe("failed");

    const resumed = await call("POST", `/v1/runs/${second.id}/resume`, { token: s.ws.write });
    expect(resumed.status).toBe(201);
    expect(statuses(resumed.body)).toEqual({ prep: "reused", count: "dispatched", merge: "pending" });
    expect(node(resumed.body, "prep").reusedFrom).toEqual(from);
  });

  it("refuses a bad key (400 naming it), another cluster's node run (403) and a stale attempt's key is not stored", async () => {
    const s = await setup({ cache: true });
    const run = (await call("POST", "/v1/runs", { token: s.ws.write, body: { dag: s.dag } })).body;
    const bad = await ask(s.credential, { nodeRunId: `${run.id}-prep`, attempt: 1, key: "md5:abc" });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.map((d: any) => d.path)).toContain("key");
    const extra = await ask(s.credential, { nodeRunId: `${run.id}-prep`, attempt: 1, key: await keyOf("x"), maxAge: "1s" });
    expect(extra.status).toBe(400);
    expect(await storedKey(`${run.id}-prep`)).toBeNull();

    const other = await setup({ cache: true });
    const foreign = await ask(other.credential, { nodeRunId: `${run.id}-prep`, attempt: 1, key: await keyOf("x") });
    expect(foreign.status).toBe(403);
    expect(foreign.body.error.message).toMatch(/not work of this cluster/);
    expect((await ask(other.credential, { nodeRunId: "no-such-node-run", attempt: 1, key: await keyOf("x") })).status).toBe(403);
    expect(await storedKey(`${run.id}-prep`)).toBeNull();
    // Attempt 2 is not the current one: answered, not stored.
    expect((await ask(s.credential, { nodeRunId: `${run.id}-prep`, attempt: 2, key: await keyOf("x") })).status).toBe(200);
    expect(await storedKey(`${run.id}-prep`)).toBeNull();
  });

  it("a DAG with a bad cache is refused (422) naming the field", async () => {
    const ws = await workspace();
    const res = await call("POST", "/v1/dags", { token: ws.write, body: sampleDag(unique("wc"), { cache: "always" }) });
    expect(res.status).toBe(422);
    expect(res.body.error.details).toEqual(expect.arrayContaining([expect.objectContaining({ path: "cache", message: expect.stringMatching(/true, false or \{maxAge/) })]));
    const node = await call("POST", "/v1/dags", { token: ws.write, body: sampleDag(unique("wc"), { nodes: [{ id: "a", project: { uri: "p" }, cache: { maxAge: "soon" } }] }) });
    expect(node.status).toBe(422);
    expect(node.body.error.details.map((d: any) => d.path)).toContain("nodes[0].cache.maxAge");
  });
});
