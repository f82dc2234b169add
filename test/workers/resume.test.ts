import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { WorkStartSchema } from "../../proto/messages";
import { call, d1RoundTrips, outboxRows, sampleDag, unique, wideDag, workspace } from "./harness";

async function sha256(text: string) {
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** A workspace with a registered agent and the sample DAG `prep → count → merge` (param `lang`, used by prep). */
async function setup() {
  const ws = await workspace();
  const created = await call("POST", "/v1/clusters", { token: ws.admin, body: { name: "local", kind: "local" } });
  const credential = `plc_${unique("agent")}`;
  await env.DB.prepare("UPDATE clusters SET agent_credential_hash = ?, registered_at = ?, bootstrap_token_hash = NULL WHERE id = ?")
    .bind(await sha256(credential), Date.now(), created.body.cluster.id)
    .run();
  const dag = unique("wc");
  expect((await call("POST", "/v1/dags", { token: ws.write, body: sampleDag(dag) })).status).toBe(201);
  return { ws, credential, dag };
}

let seq = 0;
const ev = (nodeRunId: string, attempt: number, type: string, extra: Record<string, unknown> = {}) => ({ nodeRunId, attempt, seq: ++seq, type, at: Date.now(), ...extra });
const report = async (credential: string, list: Record<string, unknown>[]) => expect((await call("POST", "/v1/agent/events", { token: credential, body: { events: list } })).status).toBe(200);
const get = async (token: string, id: string) => (await call("GET", `/v1/runs/${id}`, { token })).body;
const statuses = (run: any) => Object.fromEntries(run.nodes.map((n: any) => [n.nodeId, n.status]));

/** A run whose prep and count succeeded and whose merge failed (the run `failed`). */
async function failedRun() {
  const s = await setup();
  const run = (await call("POST", "/v1/runs", { token: s.ws.write, body: { dag: s.dag, params: { lang: "fr" } } })).body;
  await report(s.credential, [ev(`${run.id}-prep`, 1, "running", { mlflowRunId: "m-prep", mlflowParentRunId: "parent-old" }), ev(`${run.id}-prep`, 1, "succeeded")]);
  await report(s.credential, [ev(`${run.id}-count`, 1, "running", { mlflowRunId: "m-count" }), ev(`${run.id}-count`, 1, "succeeded")]);
  await report(s.credential, [ev(`${run.id}-merge`, 1, "running", { mlflowRunId: "m-merge" }), ev(`${run.id}-merge`, 1, "failed", { message: "exit 1" })]);
  const failed = await get(s.ws.read, run.id);
  expect(failed.status).toBe("failed");
  return { ...s, old: failed };
}

describe("runs: resume", () => {
  it("starts a new run that reuses the nodes that succeeded and dispatches the failed one, pointing its inputs at the old MLflow runs", async () => {
    const { ws, credential, old } = await failedRun();
    const res = await call("POST", `/v1/runs/${old.id}/resume`, { token: ws.write });
    expect(res.status).toBe(201);
    const run = res.body;
    expect(run).toMatchObject({ resumedFrom: old.id, dag: old.dag, dagVersion: 1, status: "running", params: { lang: "fr" } });
    expect(run.id).not.toBe(old.id);
    expect(statuses(run)).toEqual({ prep: "reused", count: "reused", merge: "dispatched" });
    expect(run.counters).toMatchObject({ nodes: 3, reused: 2, dispatched: 1, succeeded: 0 });
    const count = run.nodes.find((n: any) => n.nodeId === "count");
    expect(count).toMatchObject({ reusedFrom: { runId: old.id, nodeRunId: `${old.id}-count`, mlflowRunId: "m-count" }, mlflowRunId: "m-count", attempt: 0 });
    expect(run.nodes.find((n: any) => n.nodeId === "merge").reusedFrom).toBeNull();
    // What GET shows is what the submit answered.
    const byId = (nodes: any[]) => [...nodes].sort((x, y) => (x.nodeId < y.nodeId ? -1 : 1)).map((n: any) => ({ nodeId: n.nodeId, status: n.status, reusedFrom: n.reusedFrom }));
    const stored = await get(ws.read, run.id);
    expect(stored.resumedFrom).toBe(old.id);
    expect(byId(stored.nodes)).toEqual(byId(run.nodes));

    // Only merge is sent, with its reused upstream's MLflow run and (no parent yet) the reused list.
    const rows = await outboxRows(run.id);
    expect(rows.map((r) => r.msg_id)).toEqual([`${run.id}-merge.1.start`]);
    const start = WorkStartSchema.parse(JSON.parse(rows[0]!.payload));
    expect(start).toMatchObject({ nodeId: "merge", upstream: ["count"], upstreamRuns: { count: "m-count" }, mlflowParentRunId: null });
    expect(start.reused).toEqual([
      { nodeId: "prep", nodeRunId: `${run.id}-prep`, from: { runId: old.id, nodeRunId: `${old.id}-prep`, mlflowRunId: "m-prep" } },
      { nodeId: "count", nodeRunId: `${run.id}-count`, from: { runId: old.id, nodeRunId: `${old.id}-count`, mlflowRunId: "m-count" } },
    ]);

    // Events about a reused node change nothing; the dispatched one ends the run.
    await report(credential, [ev(`${run.id}-count`, 1, "failed")]);
    await report(credential, [ev(`${run.id}-merge`, 1, "running", { mlflowRunId: "m-merge2", mlflowParentRunId: "parent-new" }), ev(`${run.id}-merge`, 1, "succeeded")]);
    const done = await get(ws.read, run.id);
    expect(done.status).toBe("succeeded");
    expect(statuses(done)).toEqual({ prep: "reused", count: "reused", merge: "succeeded" });
    // The old run is as it was.
    expect(await get(ws.read, old.id)).toEqual(old);

    // Only a failed or cancelled run resumes: this one succeeded.
    expect((await call("POST", `/v1/runs/${run.id}/resume`, { token: ws.write })).status).toBe(409);
  });

  it("a params override re-runs the nodes whose parameters it changes and everything downstream", async () => {
    const { ws, old } = await failedRun();
    const res = await call("POST", `/v1/runs/${old.id}/resume`, { token: ws.write, body: { params: { lang: "de" } } });
    expect(res.status).toBe(201);
    expect(res.body.params).toEqual({ lang: "de" });
    // prep takes lang: it runs, and count and merge wait for it.
    expect(statuses(res.body)).toEqual({ prep: "dispatched", count: "pending", merge: "pending" });
    const start = WorkStartSchema.parse(JSON.parse((await outboxRows(res.body.id))[0]!.payload));
    expect(start.node).toMatchObject({ env: { LANG_CODE: "de" } });
    expect(start.upstreamRuns).toBeUndefined();
    expect(start.reused).toBeUndefined();
    // The same value as before changes nothing.
    const same = await call("POST", `/v1/runs/${old.id}/resume`, { token: ws.write, body: { params: { lang: "fr" } } });
    expect(statuses(same.body)).toEqual({ prep: "reused", count: "reused", merge: "dispatched" });
  });

  it("a node that failed in some partitions only runs just those when resumed, continuing its old node run; after a change upstream it runs whole", async () => {
    const { ws, credential, dag } = await setup();
    const run = (await call("POST", "/v1/runs", { token: ws.write, body: { dag, params: { lang: "fr" } } })).body;
    await report(credential, [ev(`${run.id}-prep`, 1, "running", { mlflowRunId: "m-prep" }), ev(`${run.id}-prep`, 1, "succeeded")]);
    const count = `${run.id}-count`;
    // Attempt 1 fails 3 and 7 of 10; its retry (attempt 2) runs those and fails 7 again: retries spent, the run fails.
    await report(credential, [ev(count, 1, "running", { mlflowRunId: "m-count-1" }), ev(count, 1, "failed", { counts: { total: 10, done: 8, failed: 2, running: 0 }, failedPartitions: "3,7" })]);
    await report(credential, [ev(count, 2, "running", { mlflowRunId: "m-count-2" }), ev(count, 2, "failed", { counts: { total: 10, done: 9, failed: 1, running: 0 }, failedPartitions: "7" })]);
    expect((await get(ws.read, run.id)).status).toBe("failed");

    const res = await call("POST", `/v1/runs/${run.id}/resume`, { token: ws.write });
    expect(res.status).toBe(201);
    expect(statuses(res.body)).toEqual({ prep: "reused", count: "dispatched", merge: "pending" });
    const rows = await outboxRows(res.body.id);
    expect(rows.map((r) => r.msg_id)).toEqual([`${res.body.id}-count.1.start`]);
    const start = WorkStartSchema.parse(JSON.parse(rows[0]!.payload));
    // The new run's first attempt: partition 7 only, on top of the old node run's latest attempt.
    expect(start).toMatchObject({ attempt: 1, upstreamRuns: { prep: "m-prep" } });
    expect(start.retry).toEqual({ attempt: 2, mlflowRunId: "m-count-2", partitions: "7", total: 10, from: { runId: run.id, nodeRunId: count } });
    // It succeeds (the nine kept count as done): merge starts, reading count under the new run.
    const next = `${res.body.id}-count`;
    await report(credential, [ev(next, 1, "running", { mlflowRunId: "m-count-3" }), ev(next, 1, "succeeded", { counts: { total: 10, done: 10, failed: 0, running: 0 } })]);
    const merge = WorkStartSchema.parse(JSON.parse((await outboxRows(res.body.id)).find((r) => r.msg_id === `${res.body.id}-merge.1.start`)!.payload));
    expect(merge.upstreamRuns).toBeUndefined();
    expect(merge.retry).toBeUndefined();

    // prep's parameters changed: its outputs (count's partitions) may differ, so count runs every partition.
    const changed = await call("POST", `/v1/runs/${run.id}/resume`, { token: ws.write, body: { params: { lang: "de" } } });
    expect(statuses(changed.body)).toEqual({ prep: "dispatched", count: "pending", merge: "pending" });
    await report(credential, [ev(`${changed.body.id}-prep`, 1, "running", { mlflowRunId: "m-prep-de" }), ev(`${changed.body.id}-prep`, 1, "succeeded")]);
    const whole = WorkStartSchema.parse(JSON.parse((await outboxRows(changed.body.id)).find((r) => r.msg_id === `${changed.body.id}-count.1.start`)!.payload));
    expect(whole.retry).toBeUndefined();
  });

  it("reuses nothing of a node that did not succeed: a cancelled run resumes from its first unfinished node", async () => {
    const { ws, credential, dag } = await setup();
    const run = (await call("POST", "/v1/runs", { token: ws.write, body: { dag } })).body;
    await report(credential, [ev(`${run.id}-prep`, 1, "running", { mlflowRunId: "m-prep" }), ev(`${run.id}-prep`, 1, "succeeded")]);
    const cancelled = await call("POST", `/v1/runs/${run.id}/cancel?force=true`, { token: ws.write });
    expect(cancelled.body.status).toBe("cancelled");
    const res = await call("POST", `/v1/runs/${run.id}/resume`, { token: ws.write, body: {} });
    expect(res.status).toBe(201);
    expect(statuses(res.body)).toEqual({ prep: "reused", count: "dispatched", merge: "pending" });
    const start = WorkStartSchema.parse(JSON.parse((await outboxRows(res.body.id))[0]!.payload));
    expect(start).toMatchObject({ nodeId: "count", upstreamRuns: { prep: "m-prep" } });
  });

  it("refuses a run that is running or succeeded (409, naming its status) and an unknown one (404), changing nothing", async () => {
    const { ws, credential, dag } = await setup();
    const run = (await call("POST", "/v1/runs", { token: ws.write, body: { dag } })).body;
    const running = await call("POST", `/v1/runs/${run.id}/resume`, { token: ws.write });
    expect(running.status).toBe(409);
    expect(running.body.error.message).toMatch(/is running: only a failed or cancelled run can be resumed/);
    for (const n of ["prep", "count", "merge"]) await report(credential, [ev(`${run.id}-${n}`, 1, "running", { mlflowRunId: `m-${n}` }), ev(`${run.id}-${n}`, 1, "succeeded")]);
    const before = await get(ws.read, run.id);
    expect(before.status).toBe("succeeded");
    const succeeded = await call("POST", `/v1/runs/${run.id}/resume`, { token: ws.write, headers: { "idempotency-key": unique("k") } });
    expect(succeeded.status).toBe(409);
    expect(succeeded.body.error.message).toMatch(/is succeeded/);
    expect((await call("POST", "/v1/runs/nope/resume", { token: ws.write })).status).toBe(404);
    // Another workspace's run is unknown here.
    const other = await workspace();
    expect((await call("POST", `/v1/runs/${run.id}/resume`, { token: other.write })).status).toBe(404);
    // Read tokens may not resume.
    expect((await call("POST", `/v1/runs/${run.id}/resume`, { token: ws.read })).status).toBe(403);
    expect(await get(ws.read, run.id)).toEqual(before);
    const listed = (await call("GET", `/v1/runs?dag=${dag}`, { token: ws.read })).body.items;
    expect(listed.map((r: any) => r.id)).toEqual([run.id]);
  });

  it("refuses undeclared params (422) and unknown fields (400), creating no run", async () => {
    const { ws, dag, old } = await failedRun();
    const bad = await call("POST", `/v1/runs/${old.id}/resume`, { token: ws.write, body: { params: { langg: "x" } } });
    expect(bad.status).toBe(422);
    expect(bad.body.error.details).toEqual([{ path: "params.langg", message: 'the DAG declares no parameter "langg" (declared: lang)' }]);
    expect((await call("POST", `/v1/runs/${old.id}/resume`, { token: ws.write, body: { dag: "x" } })).status).toBe(400);
    expect((await call("GET", `/v1/runs?dag=${dag}`, { token: ws.read })).body.items).toHaveLength(1);
  });

  it("is idempotent with an Idempotency-Key: a retry returns the same run; the key with another request is refused", async () => {
    const { ws, dag, old } = await failedRun();
    const key = unique("key");
    const first = await call("POST", `/v1/runs/${old.id}/resume`, { token: ws.write, headers: { "idempotency-key": key } });
    const second = await call("POST", `/v1/runs/${old.id}/resume`, { token: ws.write, body: { params: {} }, headers: { "idempotency-key": key } });
    expect([first.status, second.status]).toEqual([201, 200]);
    expect(second.body.id).toBe(first.body.id);
    expect(second.body.resumedFrom).toBe(old.id);
    expect(await outboxRows(first.body.id)).toHaveLength(1);
    expect((await call("GET", `/v1/runs?dag=${dag}`, { token: ws.read })).body.items).toHaveLength(2);
    const other = await call("POST", `/v1/runs/${old.id}/resume`, { token: ws.write, body: { params: { lang: "de" } }, headers: { "idempotency-key": key } });
    expect(other.status).toBe(409);
    expect(other.body.error.message).toMatch(/different request/);
    // A submit's key is not a resume's.
    const submitted = await call("POST", `/v1/runs`, { token: ws.write, body: { dag }, headers: { "idempotency-key": key } });
    expect(submitted.status).toBe(409);
    expect((await call("GET", `/v1/runs?dag=${dag}`, { token: ws.read })).body.items).toHaveLength(2);
  });

  it("sends the reused list once per cluster in a decision, and every dispatched node its reused upstreams' MLflow runs", async () => {
    const { ws, credential } = await setup();
    const dag = unique("fan");
    const project = { uri: "examples/wordcount/split" };
    const nodes = [
      { id: "prep", project },
      { id: "a", project, inputs: { p: { node: "prep" } } },
      { id: "b", project, inputs: { p: { node: "prep" } } },
    ];
    expect((await call("POST", "/v1/dags", { token: ws.write, body: { name: dag, nodes } })).status).toBe(201);
    const run = (await call("POST", "/v1/runs", { token: ws.write, body: { dag } })).body;
    await report(credential, [ev(`${run.id}-prep`, 1, "running", { mlflowRunId: "m-prep" }), ev(`${run.id}-prep`, 1, "succeeded")]);
    expect((await call("POST", `/v1/runs/${run.id}/cancel?force=true`, { token: ws.write })).body.status).toBe("cancelled");
    const res = await call("POST", `/v1/runs/${run.id}/resume`, { token: ws.write });
    expect(statuses(res.body)).toEqual({ prep: "reused", a: "dispatched", b: "dispatched" });
    const starts = (await outboxRows(res.body.id)).map((r) => WorkStartSchema.parse(JSON.parse(r.payload)));
    expect(starts.map((m) => [m.nodeId, m.upstreamRuns, m.reused?.map((r) => r.nodeId)])).toEqual([
      ["a", { prep: "m-prep" }, ["prep"]],
      ["b", { prep: "m-prep" }, undefined],
    ]);
  });

  it("resumes a 2,000-node run in a constant number of D1 round trips, the reused list in one message", async () => {
    const { ws, credential } = await setup();
    const dag = wideDag(unique("wide"), 2000);
    expect((await call("POST", "/v1/dags", { token: ws.write, body: dag })).status).toBe(201);
    const run = (await call("POST", "/v1/runs", { token: ws.write, body: { dag: dag.name } })).body;
    // Half the roots succeed (n0..n999), then the run is cancelled.
    for (let start = 0; start < 1000; start += 250) {
      const list = [];
      for (let i = start; i < start + 250; i++) list.push(ev(`${run.id}-n${i}`, 1, "running", { mlflowRunId: `m-${i}` }), ev(`${run.id}-n${i}`, 1, "succeeded"));
      await report(credential, list);
    }
    expect((await call("POST", `/v1/runs/${run.id}/cancel?force=true`, { token: ws.write })).body.status).toBe("cancelled");
    const res = await call("POST", `/v1/runs/${run.id}/resume`, { token: ws.write });
    expect(res.status).toBe(201);
    // The sink waits for n0..n49 only, all reused: it runs at once, with the 999 roots left.
    expect(res.body.counters).toMatchObject({ nodes: 2000, reused: 1000, dispatched: 1000, pending: 0 });
    // Authentication (1) + the old run's read (1) + the submit's read batch (1) + its write batch (1).
    expect(d1RoundTrips(res.headers)).toBe(4);
    const starts = (await outboxRows(res.body.id)).map((r) => WorkStartSchema.parse(JSON.parse(r.payload)));
    expect(starts).toHaveLength(1000);
    expect(starts.filter((m) => m.reused).map((m) => m.reused!.length)).toEqual([1000]);
    const stored = await get(ws.read, res.body.id);
    expect(stored.nodes.find((n: any) => n.nodeId === "n999").reusedFrom).toEqual({ runId: run.id, nodeRunId: `${run.id}-n999`, mlflowRunId: "m-999" });
  }, 60_000);

  it("a run whose every node is reused is succeeded at once, dispatching nothing", async () => {
    const { ws, credential, dag } = await setup();
    const run = (await call("POST", "/v1/runs", { token: ws.write, body: { dag } })).body;
    for (const n of ["prep", "count", "merge"]) await report(credential, [ev(`${run.id}-${n}`, 1, "running", { mlflowRunId: `m-${n}` }), ev(`${run.id}-${n}`, 1, "succeeded")]);
    // Make it failed after the fact (as if a late failure was recorded): every node still succeeded.
    await env.DB.prepare("UPDATE dag_runs SET status = 'failed' WHERE id = ?").bind(run.id).run();
    const res = await call("POST", `/v1/runs/${run.id}/resume`, { token: ws.write });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ status: "succeeded", counters: { reused: 3 } });
    expect(res.body.finishedAt).not.toBeNull();
    expect(await outboxRows(res.body.id)).toEqual([]);
    expect((await get(ws.read, res.body.id)).status).toBe("succeeded");
  });
});
