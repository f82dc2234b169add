import { createExecutionContext, createScheduledController, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../control/src/index";
import { call, outboxRows, unique, workspace } from "./harness";

const MIN = 60_000;

async function sha256(text: string) {
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Fires the Worker's Cron Trigger as Cloudflare would, at `at`. */
async function fire(at: number) {
  const ctx = createExecutionContext();
  await worker.scheduled(createScheduledController({ scheduledTime: at, cron: "* * * * *" }), env, ctx);
  await waitOnExecutionContext(ctx);
}

/** A cluster whose agent is registered (as registration leaves it) and heartbeating. */
async function agentCluster(ws: { admin: string }, name: string) {
  const created = await call("POST", "/v1/clusters", { token: ws.admin, body: { name, kind: "local", labels: { gpu: "true" } } });
  expect(created.status).toBe(201);
  const credential = `plc_${unique("agent")}`;
  await env.DB.prepare("UPDATE clusters SET agent_credential_hash = ?, registered_at = ?, bootstrap_token_hash = NULL WHERE id = ?")
    .bind(await sha256(credential), Date.now(), created.body.cluster.id)
    .run();
  const beat = () => call("POST", "/v1/agent/heartbeat", { token: credential, body: { agentVersion: "1", runningJobs: 0 } });
  expect((await beat()).status).toBe(200);
  return { id: created.body.cluster.id as string, credential, beat };
}

const events = (credential: string, list: Record<string, unknown>[]) => call("POST", "/v1/agent/events", { token: credential, body: { events: list } });
const ev = (nodeRunId: string, attempt: number, seq: number, type: string, extra: Record<string, unknown> = {}) => ({ nodeRunId, attempt, seq, type, at: Date.now(), ...extra });

/**
 * Two clusters `a` and `b` labelled gpu=true, a DAG `train` (selector gpu=true) → `report`, with
 * `train` running on `a`. `silence(ms)` makes `a` (and the node's last change) that old.
 */
async function setup(onClusterLost: Record<string, unknown> | undefined, cluster: unknown = { gpu: "true" }) {
  const ws = await workspace();
  const a = await agentCluster(ws, "a");
  const b = await agentCluster(ws, "b");
  const dag = unique("lost");
  const doc = {
    name: dag,
    ...(onClusterLost ? { onClusterLost } : {}),
    nodes: [
      { id: "train", project: { uri: "examples/noop" }, cluster },
      { id: "report", project: { uri: "examples/noop" }, cluster, after: ["train"] },
    ],
  };
  expect((await call("POST", "/v1/dags", { token: ws.write, body: doc })).status).toBe(201);
  const run = (await call("POST", "/v1/runs", { token: ws.write, body: { dag } })).body;
  const train = `${run.id}-train`;
  expect((await view(ws.read, run.id)).nodes.find((n: any) => n.nodeId === "train")).toMatchObject({ status: "dispatched", clusterId: a.id });
  expect((await events(a.credential, [ev(train, 1, 1, "accepted"), ev(train, 1, 2, "running", { mlflowRunId: "m-a-1", mlflowParentRunId: "m-parent" })])).body.applied).toBe(2);
  const silence = async (ms: number) => {
    await env.DB.prepare("UPDATE clusters SET last_heartbeat_at = ? WHERE id = ?")
      .bind(Date.now() - ms, a.id)
      .run();
    await env.DB.prepare("UPDATE node_runs SET updated_at = ? WHERE id = ?")
      .bind(Date.now() - ms, train)
      .run();
  };
  return { ws, a, b, run, train, silence };
}

const view = async (token: string, runId: string) => (await call("GET", `/v1/runs/${runId}`, { token })).body;
const nodeOf = async (token: string, runId: string, nodeId: string) => (await view(token, runId)).nodes.find((n: any) => n.nodeId === nodeId);

describe("lost clusters (onClusterLost)", () => {
  it("retryElsewhere: after the grace the next attempt goes to b, finishes there; a's late events change nothing; a is told to cancel", async () => {
    const { ws, a, b, run, train, silence } = await setup({ policy: "retryElsewhere", grace: "10m" });
    // Within the grace: nothing changes.
    await silence(9 * MIN);
    await b.beat();
    const before = await view(ws.read, run.id);
    await fire(Date.now());
    expect(await view(ws.read, run.id)).toEqual(before);
    expect((await outboxRows(run.id)).map((r) => r.msg_id)).toEqual([`${train}.1.start`]);

    // Past it: attempt 1 is lost, attempt 2 is sent to b; a is sent cancel for attempt 1 — once,
    // though two ticks run at the same moment (one wins the run's claim; the other finds nothing left).
    await silence(11 * MIN);
    await b.beat();
    await Promise.all([fire(Date.now()), fire(Date.now())]);
    const moved = await nodeOf(ws.read, run.id, "train");
    expect(moved).toMatchObject({ status: "dispatched", attempt: 2, clusterId: b.id });
    expect(moved.message).toMatch(/^cluster "a" lost \(no heartbeat since .*; onClusterLost retryElsewhere after 10m\): attempt 1 abandoned; retried on cluster "b" as attempt 2$/);
    const rows = await outboxRows(run.id);
    expect(rows.map((r) => [r.msg_id, r.subject])).toEqual([
      [`${train}.1.start`, `work.${a.id}.start`],
      [`${train}.2.start`, `work.${b.id}.start`],
      [`${train}.1.cancel`, `work.${a.id}.cancel`],
    ]);
    expect(JSON.parse(rows[1]!.payload)).toMatchObject({ type: "start", nodeId: "train", attempt: 2 });
    expect(JSON.parse(rows[2]!.payload)).toEqual({ type: "cancel", runId: run.id, nodeRunId: train, nodeId: "train", attempt: 1 });
    expect((await view(ws.read, run.id)).status).toBe("running");
    // The pending dependant, placed on a at submit by the same selector, now waits for b.
    expect(await nodeOf(ws.read, run.id, "report")).toMatchObject({ status: "pending", clusterId: b.id });
    const detail = (await call("GET", `/v1/runs/${run.id}/nodes/train`, { token: ws.read })).body;
    const logged = await env.DB.prepare("SELECT type, node_id FROM events WHERE run_id = ? AND type LIKE 'node.%' ORDER BY seq").bind(run.id).all<{ type: string; node_id: string }>();
    expect(logged.results).toEqual([
      { type: "node.lost", node_id: train },
      { type: "node.moved", node_id: `${run.id}-report` },
    ]);
    expect(detail.lostAttempts).toEqual([{ attempt: 1, clusterId: a.id, since: expect.stringMatching(/^\d{4}-.*Z$/), at: expect.stringMatching(/^\d{4}-.*Z$/) }]);

    // Another tick (or two at once) changes nothing more.
    const after = await view(ws.read, run.id);
    await Promise.all([fire(Date.now()), fire(Date.now())]);
    expect(await view(ws.read, run.id)).toEqual(after);
    expect(await outboxRows(run.id)).toHaveLength(3);

    // b runs attempt 2 to success: report is dispatched to b.
    expect((await events(b.credential, [ev(train, 2, 1, "running", { mlflowRunId: "m-b-2" }), ev(train, 2, 2, "succeeded")])).body).toMatchObject({ applied: 2, ignored: 0 });
    expect(await nodeOf(ws.read, run.id, "train")).toMatchObject({ status: "succeeded", attempt: 2, mlflowRunId: "m-b-2" });
    expect(await nodeOf(ws.read, run.id, "report")).toMatchObject({ status: "dispatched", attempt: 1, clusterId: b.id });
    expect((await outboxRows(run.id)).at(-1)).toMatchObject({ msg_id: `${run.id}-report.1.start`, subject: `work.${b.id}.start` });
    // a comes back: its stale attempt's late success or failure is answered, ignored, and changes nothing.
    const settled = await view(ws.read, run.id);
    const late = await events(a.credential, [ev(train, 1, 3, "failed", { message: "killed" }), ev(train, 1, 4, "succeeded")]);
    expect(late.status).toBe(200);
    expect(late.body).toMatchObject({ applied: 0, ignored: 2 });
    expect(await view(ws.read, run.id)).toEqual(settled);
    // Its events for an attempt it never had are still refused.
    expect((await events(a.credential, [ev(train, 2, 9, "succeeded")])).status).toBe(403);
  });

  it("fail: after the grace the node fails naming the cluster, and the run fails; a is told to cancel", async () => {
    const { ws, a, run, train, silence } = await setup({ policy: "fail", grace: "5m" });
    await silence(4 * MIN);
    await fire(Date.now());
    expect((await view(ws.read, run.id)).status).toBe("running");
    await silence(6 * MIN);
    await fire(Date.now());
    const v = await view(ws.read, run.id);
    expect(v.status).toBe("failed");
    const node = v.nodes.find((n: any) => n.nodeId === "train");
    expect(node).toMatchObject({ status: "failed", attempt: 1, clusterId: a.id });
    expect(node.message).toMatch(/^cluster "a" lost \(no heartbeat since .*; onClusterLost fail after 5m\): attempt 1 abandoned$/);
    expect(v.nodes.find((n: any) => n.nodeId === "report")).toMatchObject({ status: "skipped" });
    expect((await outboxRows(run.id)).map((r) => [r.msg_id, r.subject])).toEqual([
      [`${train}.1.start`, `work.${a.id}.start`],
      [`${train}.1.cancel`, `work.${a.id}.cancel`],
    ]);
    // a's late report of the lost attempt changes nothing, and tells it the run is over.
    const late = await events(a.credential, [ev(train, 1, 3, "succeeded")]);
    expect(late.body).toEqual({ applied: 0, ignored: 1, endedRuns: [{ runId: run.id, status: "failed" }] });
    expect((await view(ws.read, run.id)).status).toBe("failed");
  });

  it("the default is fail after 10 minutes; a node naming its cluster has nowhere else to go", async () => {
    const dflt = await setup(undefined);
    await dflt.silence(9 * MIN);
    await fire(Date.now());
    expect((await view(dflt.ws.read, dflt.run.id)).status).toBe("running");
    await dflt.silence(11 * MIN);
    await fire(Date.now());
    expect((await nodeOf(dflt.ws.read, dflt.run.id, "train")).message).toMatch(/onClusterLost fail after 10m/);

    const named = await setup({ policy: "retryElsewhere", grace: "1m" }, "a");
    await named.silence(2 * MIN);
    await named.b.beat();
    await fire(Date.now());
    const v = await view(named.ws.read, named.run.id);
    expect(v.status).toBe("failed");
    expect(v.nodes.find((n: any) => n.nodeId === "train").message).toMatch(/; nowhere else to retry: the node names cluster "a"$/);
  });

  it("a run being cancelled whose step's cluster is lost ends after the grace, without a retry", async () => {
    const { ws, b, run, silence } = await setup({ policy: "retryElsewhere", grace: "10m" });
    expect((await call("POST", `/v1/runs/${run.id}/cancel`, { token: ws.write })).body.status).toBe("cancelling");
    await silence(11 * MIN);
    await b.beat();
    await fire(Date.now());
    const v = await view(ws.read, run.id);
    expect(v.status).toBe("cancelled");
    expect(v.nodes.find((n: any) => n.nodeId === "train")).toMatchObject({ status: "failed", attempt: 1, message: expect.stringMatching(/; not retried: the run is cancelling$/) });
  });

  it("wait: nothing happens, however long the cluster is silent", async () => {
    const { ws, run, silence } = await setup({ policy: "wait", grace: "1m" });
    await silence(600 * MIN);
    const before = await view(ws.read, run.id);
    await fire(Date.now());
    expect(await view(ws.read, run.id)).toEqual(before);
    expect(before.nodes.find((n: any) => n.nodeId === "train")).toMatchObject({ status: "running", attempt: 1 });
  });

  it("refuses a bad onClusterLost, naming the field", async () => {
    const ws = await workspace();
    const name = unique("bad");
    const bad = await call("POST", "/v1/dags", { token: ws.write, body: { name, onClusterLost: { policy: "retry", grace: "10" }, nodes: [{ id: "x", project: { uri: "examples/noop" } }] } });
    expect(bad.status).toBe(422);
    expect((await call("GET", `/v1/dags/${name}`, { token: ws.read })).status).toBe(404);
    expect(bad.body.error.details).toEqual([
      { path: "onClusterLost.policy", message: 'expected "wait", "retryElsewhere" or "fail"' },
      { path: "onClusterLost.grace", message: 'expected a positive duration such as "30s", "15m", "2h" or "1d"' },
    ]);
  });
});

describe("cancel across clusters", () => {
  it("a run with steps running on two clusters sends each cluster cancel for its own step, and ends when both agents confirm", async () => {
    const ws = await workspace();
    const a = await agentCluster(ws, "a");
    const b = await agentCluster(ws, "b");
    const dag = unique("both");
    const doc = {
      name: dag,
      nodes: [
        { id: "x", project: { uri: "examples/noop" }, cluster: "a" },
        { id: "y", project: { uri: "examples/noop" }, cluster: "b" },
      ],
    };
    expect((await call("POST", "/v1/dags", { token: ws.write, body: doc })).status).toBe(201);
    const run = (await call("POST", "/v1/runs", { token: ws.write, body: { dag } })).body;
    const [x, y] = [`${run.id}-x`, `${run.id}-y`];
    await events(a.credential, [ev(x, 1, 1, "running")]);
    await events(b.credential, [ev(y, 1, 1, "running")]);
    const cancelled = await call("POST", `/v1/runs/${run.id}/cancel`, { token: ws.write });
    expect(cancelled.body.status).toBe("cancelling");
    expect((await outboxRows(run.id)).filter((r) => r.msg_id.endsWith(".cancel")).map((r) => [r.msg_id, r.subject])).toEqual([
      [`${x}.1.cancel`, `work.${a.id}.cancel`],
      [`${y}.1.cancel`, `work.${b.id}.cancel`],
    ]);
    await events(a.credential, [ev(x, 1, 2, "cancelled")]);
    expect((await view(ws.read, run.id)).status).toBe("cancelling");
    // Each agent may report only its own step.
    expect((await events(a.credential, [ev(y, 1, 2, "cancelled")])).status).toBe(403);
    expect((await events(b.credential, [ev(y, 1, 2, "cancelled")])).body.endedRuns).toEqual([{ runId: run.id, status: "cancelled" }]);
    expect(await view(ws.read, run.id)).toMatchObject({ status: "cancelled", counters: { cancelled: 2 } });
  });
});
