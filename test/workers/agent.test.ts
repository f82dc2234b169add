import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { encodePublicKey } from "../../control/src/nats";
import { call, d1RoundTrips, outboxRows, sampleDag, unique, workspace } from "./harness";

async function sha256(text: string) {
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** A workspace with a cluster whose agent is registered (as registration would leave it) and a running run. */
async function registeredCluster(name = "local", dagExtra: (d: ReturnType<typeof sampleDag>) => unknown = (d) => d) {
  const ws = await workspace();
  const created = await call("POST", "/v1/clusters", { token: ws.admin, body: { name, kind: "local" } });
  const credential = `plc_${unique("agent")}`;
  await env.DB.prepare("UPDATE clusters SET agent_credential_hash = ?, registered_at = ?, bootstrap_token_hash = NULL WHERE id = ?")
    .bind(await sha256(credential), Date.now(), created.body.cluster.id)
    .run();
  const dag = unique("wc");
  await call("POST", "/v1/dags", { token: ws.write, body: dagExtra(sampleDag(dag)) });
  const run = await call("POST", "/v1/runs", { token: ws.write, body: { dag } });
  return { ws, clusterId: created.body.cluster.id as string, credential, run: run.body, bootstrap: created.body.bootstrap.token as string };
}

const events = (credential: string, list: Record<string, unknown>[]) => call("POST", "/v1/agent/events", { token: credential, body: { events: list } });
const ev = (nodeRunId: string, attempt: number, seq: number, type: string, extra: Record<string, unknown> = {}) => ({ nodeRunId, attempt, seq, type, at: Date.now(), ...extra });
const node = async (token: string, runId: string, nodeId: string) => (await call("GET", `/v1/runs/${runId}`, { token })).body.nodes.find((n: any) => n.nodeId === nodeId);

describe("agent endpoints", () => {
  it("heartbeats mark the cluster online and show what the agent reported", async () => {
    const { ws, credential } = await registeredCluster();
    const beat = await call("POST", "/v1/agent/heartbeat", {
      token: credential,
      body: { agentVersion: "0.1.0", kubernetesVersion: "v1.34.1", allocatable: { cpu: "8", memory: "32Gi", gpu: 1 }, runningJobs: 2, builder: "buildkit docker.io/moby/buildkit:v0.34.2-rootless" },
    });
    expect(beat.status).toBe(200);
    const cluster = (await call("GET", "/v1/clusters/local", { token: ws.read })).body;
    expect(cluster.status).toBe("online");
    expect(cluster.agent).toMatchObject({ agentVersion: "0.1.0", allocatable: { gpu: 1 }, runningJobs: 2, builder: "buildkit docker.io/moby/buildkit:v0.34.2-rootless" });
    expect((await call("POST", "/v1/agent/heartbeat", { token: null, body: {} })).status).toBe(401);
    expect((await call("POST", "/v1/agent/heartbeat", { token: "plc_forged", body: { agentVersion: "x", runningJobs: 0 } })).status).toBe(401);
    // A user token is not an agent credential.
    expect((await call("POST", "/v1/agent/heartbeat", { token: ws.admin, body: { agentVersion: "x", runningJobs: 0 } })).status).toBe(401);
    const bad = await call("POST", "/v1/agent/heartbeat", { token: credential, body: { agentVersion: "x", runningJobs: -1 } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details[0].path).toBe("runningJobs");
  });

  it("applies events: the node succeeds and its dependant is dispatched; a replayed batch changes nothing", async () => {
    const { ws, credential, run, clusterId } = await registeredCluster();
    const prep = `${run.id}-prep`;
    const batch = [
      ev(prep, 1, 1, "accepted"),
      ev(prep, 1, 2, "running", { mlflowRunId: "abc123" }),
      ev(prep, 1, 3, "progress", { counts: { total: 1, done: 1, failed: 0, running: 0 } }),
      ev(prep, 1, 4, "succeeded"),
    ];
    const first = await events(credential, batch);
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ applied: 4, ignored: 0, endedRuns: [] });
    const after = (await call("GET", `/v1/runs/${run.id}`, { token: ws.read })).body;
    expect(after.nodes.find((n: any) => n.nodeId === "prep")).toMatchObject({ status: "succeeded", mlflowRunId: "abc123", partitions: { total: 1, done: 1 } });
    expect(after.nodes.find((n: any) => n.nodeId === "count")).toMatchObject({ status: "dispatched", attempt: 1 });
    const rows = await outboxRows(run.id);
    expect(rows.map((r) => r.msg_id)).toEqual([`${prep}.1.start`, `${run.id}-count.1.start`]);
    expect(rows[1]!.subject).toBe(`work.${clusterId}.start`);

    // One read batch and one write batch, whatever the events (plus authenticating the agent).
    expect(d1RoundTrips(first.headers)).toBe(3);
    const replay = await events(credential, batch);
    expect(replay.body).toEqual({ applied: 0, ignored: 4, endedRuns: [] });
    expect(await outboxRows(run.id)).toHaveLength(2);
    expect((await call("GET", `/v1/runs/${run.id}`, { token: ws.read })).body).toEqual(after);
  });

  it("keeps the DAG run's MLflow parent run from the first agent that reports it, and links it in the MLflow UI", async () => {
    const { ws, credential, run } = await registeredCluster();
    const before = (await call("GET", `/v1/runs/${run.id}`, { token: ws.read })).body;
    expect(before).toMatchObject({ mlflowRunId: null, mlflowUrl: null });
    expect(before.mlflowNote).toMatch(/no agent has started a step of this run yet/);
    const prep = `${run.id}-prep`;
    expect((await events(credential, [ev(prep, 1, 1, "running", { mlflowRunId: "child1", mlflowParentRunId: "parent1" })])).status).toBe(200);
    // Another report (a later node, another agent) names the same parent or, after a lost race, another: the first stays.
    expect((await events(credential, [ev(prep, 1, 2, "progress", { mlflowParentRunId: "parent2" })])).status).toBe(200);
    const after = (await call("GET", `/v1/runs/${run.id}`, { token: ws.read })).body;
    expect(after).toMatchObject({ mlflowRunId: "parent1", mlflowUrl: `${env.MLFLOW_UI_URL}/#/runs/parent1`, mlflowNote: null });
    expect(after.nodes.find((n: any) => n.nodeId === "prep")).toMatchObject({ mlflowRunId: "child1", mlflowUrl: `${env.MLFLOW_UI_URL}/#/runs/child1` });
    const listed = (await call("GET", `/v1/runs?dag=${run.dag}`, { token: ws.read })).body.items[0];
    expect(listed).toMatchObject({ id: run.id, mlflowRunId: "parent1", mlflowUrl: `${env.MLFLOW_UI_URL}/#/runs/parent1` });
  });

  it("says why a run that never reached an agent has no MLflow run", async () => {
    const { ws, run } = await registeredCluster();
    const cancelled = (await call("POST", `/v1/runs/${run.id}/cancel?force=true`, { token: ws.write })).body;
    expect(cancelled).toMatchObject({ status: "cancelled", mlflowRunId: null, mlflowUrl: null });
    expect(cancelled.mlflowNote).toBe("no step of this run reached an agent, so it has no MLflow run");
  });

  it("ignores out-of-order and stale-attempt events", async () => {
    const { ws, credential, run } = await registeredCluster();
    const prep = `${run.id}-prep`;
    expect((await events(credential, [ev(prep, 1, 5, "running")])).body).toEqual({ applied: 1, ignored: 0, endedRuns: [] });
    expect((await events(credential, [ev(prep, 1, 3, "failed"), ev(prep, 2, 6, "succeeded")])).body).toEqual({ applied: 0, ignored: 2, endedRuns: [] });
    expect(await node(ws.read, run.id, "prep")).toMatchObject({ status: "running", attempt: 1 });
  });

  it("refuses a batch that reports on another cluster's work, and applies none of it", async () => {
    const a = await registeredCluster();
    const b = await registeredCluster();
    const res = await events(a.credential, [ev(`${a.run.id}-prep`, 1, 1, "running"), ev(`${b.run.id}-prep`, 1, 1, "succeeded"), ev("made-up", 1, 1, "succeeded")]);
    expect(res.status).toBe(403);
    expect(res.body.error.details).toEqual([
      { path: "events[1].nodeRunId", message: `node run "${b.run.id}-prep" is not work of this cluster` },
      { path: "events[2].nodeRunId", message: 'node run "made-up" is not work of this cluster' },
    ]);
    expect(await node(a.ws.read, a.run.id, "prep")).toMatchObject({ status: "dispatched" });
    expect(await node(b.ws.read, b.run.id, "prep")).toMatchObject({ status: "dispatched" });
  });

  it("a node waiting for its image is `building` since its first building event, with the image; a retry starts afresh", async () => {
    const { ws, credential, run } = await registeredCluster();
    await events(credential, [ev(`${run.id}-prep`, 1, 1, "succeeded")]);
    const count = `${run.id}-count`; // retries: 1
    const t0 = Date.UTC(2026, 0, 2, 3, 4, 5);
    await events(credential, [
      ev(count, 1, 1, "accepted"),
      { ...ev(count, 1, 2, "building", { imageRef: "registry.example/ml/env:aa", message: "waiting for the image registry.example/ml/env:aa" }), at: t0 },
      { ...ev(count, 1, 3, "building", { imageRef: "registry.example/ml/project-x:bb" }), at: t0 + 60_000 },
    ]);
    expect(await node(ws.read, run.id, "count")).toMatchObject({
      status: "building",
      imageRef: "registry.example/ml/project-x:bb",
      buildingSince: new Date(t0).toISOString(),
      message: "waiting for the image registry.example/ml/env:aa",
      startedAt: null,
    });
    const counters = (await call("GET", `/v1/runs/${run.id}`, { token: ws.read })).body.counters;
    expect(counters.building).toBe(1);
    // A failed build fails the node with its reason; the retry is a new attempt, not building yet.
    await events(credential, [ev(count, 1, 4, "failed", { message: "building the image registry.example/ml/env:aa failed at RUN … pip install" })]);
    expect(await node(ws.read, run.id, "count")).toMatchObject({ status: "dispatched", attempt: 2, imageRef: null, buildingSince: null, message: null });
    await events(credential, [ev(count, 2, 1, "built", { imageRef: "registry.example/ml/project-x:bb@sha256:cc" }), ev(count, 2, 2, "running")]);
    expect(await node(ws.read, run.id, "count")).toMatchObject({ status: "running", attempt: 2, imageRef: "registry.example/ml/project-x:bb@sha256:cc", buildingSince: null });
  });

  it("retries a failed step up to `retries`, then fails the run and skips what depended on it", async () => {
    const { ws, credential, run } = await registeredCluster();
    await events(credential, [ev(`${run.id}-prep`, 1, 1, "succeeded")]);
    const count = `${run.id}-count`;
    await events(credential, [ev(count, 1, 1, "running"), ev(count, 1, 2, "failed", { message: "exit code 3" })]);
    expect(await node(ws.read, run.id, "count")).toMatchObject({ status: "dispatched", attempt: 2, message: null });
    expect((await outboxRows(run.id)).map((r) => r.msg_id)).toContain(`${count}.2.start`);
    const ending = await events(credential, [ev(count, 2, 1, "running"), ev(count, 2, 2, "failed", { message: "exit code 3" })]);
    expect(ending.body.endedRuns).toEqual([{ runId: run.id, status: "failed" }]);
    const final = (await call("GET", `/v1/runs/${run.id}`, { token: ws.read })).body;
    expect(final.status).toBe("failed");
    expect(final.finishedAt).not.toBeNull();
    expect(final.nodes.map((n: any) => [n.nodeId, n.status, n.attempt])).toEqual([
      ["count", "failed", 2],
      ["merge", "skipped", 0],
      ["prep", "succeeded", 1],
    ]);
  });

  it("a final failure (the executor spent the retries within the attempt) fails the run without another attempt", async () => {
    const { ws, credential, run } = await registeredCluster();
    await events(credential, [ev(`${run.id}-prep`, 1, 1, "succeeded")]);
    const count = `${run.id}-count`;
    const ending = await events(credential, [ev(count, 1, 1, "running"), ev(count, 1, 2, "failed", { message: "partition 3 exited with code 42", final: true })]);
    expect(ending.body.endedRuns).toEqual([{ runId: run.id, status: "failed" }]);
    expect(await node(ws.read, run.id, "count")).toMatchObject({ status: "failed", attempt: 1, message: "partition 3 exited with code 42" });
    expect((await outboxRows(run.id)).map((r) => r.msg_id)).not.toContain(`${count}.2.start`);
  });

  it("a partial failure retries only the failed partitions; the node endpoint names them with their exit codes", async () => {
    const { ws, credential, run } = await registeredCluster();
    await events(credential, [ev(`${run.id}-prep`, 1, 1, "succeeded", { mlflowRunId: "prep-run" })]);
    const count = `${run.id}-count`;
    const failures = [
      { index: 3, exitCode: 1, stderr: "flaky 3" },
      { index: 7, exitCode: 1, stderr: "flaky 7" },
    ];
    await events(credential, [
      ev(count, 1, 1, "running", { mlflowRunId: "count-run-1", counts: { total: 10, done: 0, failed: 0, running: 10 } }),
      ev(count, 1, 2, "failed", { counts: { total: 10, done: 8, failed: 2, running: 0 }, message: "partitions 3, 7 failed", failedPartitions: "3,7", partitionFailures: failures }),
    ]);
    const detail = await call("GET", `/v1/runs/${run.id}/nodes/count`, { token: ws.read });
    expect(detail.status).toBe(200);
    expect(detail.body).toMatchObject({ nodeId: "count", status: "dispatched", attempt: 2 });
    // The retry's start names the failed partitions, and the attempt whose outputs the others keep.
    const start = (await outboxRows(run.id)).find((r) => r.msg_id === `${count}.2.start`)!;
    expect(JSON.parse(start.payload).retry).toEqual({ attempt: 1, mlflowRunId: "count-run-1", partitions: "3,7", total: 10 });
    // The retry fails one of them again (retries spent): the run fails, the endpoint says which and why.
    await events(credential, [ev(count, 2, 1, "failed", { counts: { total: 10, done: 9, failed: 1, running: 0 }, failedPartitions: "7", partitionFailures: [failures[1]!] })]);
    const after = await call("GET", `/v1/runs/${run.id}/nodes/count`, { token: ws.read });
    expect(after.body).toMatchObject({ status: "failed", attempt: 2, failedPartitions: "7", partitionFailures: [{ index: 7, exitCode: 1, stderr: "flaky 7" }] });
    expect((await call("GET", `/v1/runs/${run.id}/nodes/nope`, { token: ws.read })).status).toBe(404);
  });

  it("minSuccessRatio: a node that lost few enough partitions succeeds, naming them, and its dependant starts", async () => {
    const { ws, credential, run } = await registeredCluster("local", (d) => ({ ...d, nodes: d.nodes.map((n) => (n.id === "count" ? { ...n, retries: 0, minSuccessRatio: 0.8 } : n)) }));
    await events(credential, [ev(`${run.id}-prep`, 1, 1, "succeeded")]);
    const count = `${run.id}-count`;
    await events(credential, [ev(count, 1, 1, "failed", { counts: { total: 10, done: 8, failed: 2, running: 0 }, failedPartitions: "3,7" })]);
    expect(await node(ws.read, run.id, "count")).toMatchObject({ status: "succeeded", message: "succeeded with 8 of 10 partitions (minSuccessRatio 0.8); failed: 3,7" });
    expect(await node(ws.read, run.id, "merge")).toMatchObject({ status: "dispatched" });
  });

  it("finishes a cancelled run when the agent reports its active node cancelled", async () => {
    const { ws, credential, run } = await registeredCluster();
    expect((await call("POST", `/v1/runs/${run.id}/cancel`, { token: ws.write })).body.status).toBe("cancelling");
    await events(credential, [ev(`${run.id}-prep`, 1, 1, "cancelled")]);
    expect((await call("GET", `/v1/runs/${run.id}`, { token: ws.read })).body.status).toBe("cancelled");
  });

  it("after a forced cancel, the agent's late report changes nothing but tells it the run has ended", async () => {
    const { ws, credential, run } = await registeredCluster();
    await events(credential, [ev(`${run.id}-prep`, 1, 1, "running")]);
    expect((await call("POST", `/v1/runs/${run.id}/cancel?force=true`, { token: ws.write })).body.status).toBe("cancelled");
    const before = (await call("GET", `/v1/runs/${run.id}`, { token: ws.read })).body;
    const late = await events(credential, [ev(`${run.id}-prep`, 1, 2, "cancelled")]);
    expect(late.body).toEqual({ applied: 0, ignored: 1, endedRuns: [{ runId: run.id, status: "cancelled" }] });
    expect((await call("GET", `/v1/runs/${run.id}`, { token: ws.read })).body).toEqual(before);
  });

  it("registration: refuses bad input and expired tokens; without NATS answers 503 and keeps the token", async () => {
    const ws = await workspace();
    const created = await call("POST", "/v1/clusters", { token: ws.admin, body: { name: "c", kind: "generic" } });
    const key = encodePublicKey("user", crypto.getRandomValues(new Uint8Array(32)));
    const badChecksum = await call("POST", "/v1/agent/register", { token: null, body: { bootstrapToken: created.body.bootstrap.token, natsPublicKey: `U${"A".repeat(55)}`, agentVersion: "1" } });
    expect(badChecksum.status).toBe(400);
    expect(badChecksum.body.error.details).toEqual([{ path: "natsPublicKey", message: "not a valid NATS user public key (bad checksum)" }]);
    const bad = await call("POST", "/v1/agent/register", { token: null, body: { bootstrapToken: created.body.bootstrap.token, natsPublicKey: "not-a-key", agentVersion: "1" } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details[0].path).toBe("natsPublicKey");
    const unknown = await call("POST", "/v1/agent/register", { token: null, body: { bootstrapToken: "plb_nope", natsPublicKey: key, agentVersion: "1" } });
    expect(unknown.status).toBe(401);
    const noNats = await call("POST", "/v1/agent/register", { token: null, body: { bootstrapToken: created.body.bootstrap.token, natsPublicKey: key, agentVersion: "1" } });
    expect(noNats.status).toBe(503);
    expect((await call("GET", "/v1/clusters/c", { token: ws.read })).body.status).toBe("awaiting_agent");
    await env.DB.prepare("UPDATE clusters SET bootstrap_expires_at = ? WHERE id = ?")
      .bind(Date.now() - 1, created.body.cluster.id)
      .run();
    const expired = await call("POST", "/v1/agent/register", { token: null, body: { bootstrapToken: created.body.bootstrap.token, natsPublicKey: key, agentVersion: "1" } });
    expect(expired.status).toBe(401);
    expect(expired.body.error.message).toBe("the bootstrap token expired; get a new one with POST /v1/clusters/c/bootstrap");
  });
});
