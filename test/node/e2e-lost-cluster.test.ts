/**
 * A lost cluster with real components: the embedded default (nats-server, `mlflow server`, the
 * control plane under wrangler) and two local agents, `a` and `b`, both labelled gpu=true. A step
 * (selector gpu=true, `onClusterLost: retryElsewhere`) runs on `a`; `a`'s agent is frozen (SIGSTOP:
 * a cluster that went silent, its step still running). Once `a` is offline the Cron Trigger (fired
 * here, as the cron ticker would) starts the next attempt on `b`, where it succeeds; `a`'s agent,
 * thawed, pulls the cancel of its stale attempt and stops it: its MLflow run ends KILLED, and
 * nothing it reports changes the run.
 *
 * The step's project is the relative path `step`, which each agent resolves under its own projects
 * root: `a`'s copy waits 10 minutes (it must still be running when `a` comes back), `b`'s ends at once.
 */
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MlflowClient } from "../../proto/mlflow";
import { startAgent, type AgentProcess } from "../../scripts/local/agent";
import { ROOT } from "../../scripts/local/control-plane";
import { startEmbedded, type Embedded } from "../../scripts/local/embedded";
import { fireCronTrigger } from "../support/e2e-api";

const TOKEN = "lost-cluster-token";
let env: Embedded;
let state: string;
const agents: Record<string, AgentProcess> = {};

async function api(method: string, path: string, body?: unknown) {
  const res = await fetch(env.control.url + path, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (agent logs: ${Object.values(agents).map((a) => a.logFile)})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The step's project for one agent: `seconds` is its default wait. */
function stepFor(name: string, seconds: number): string {
  const root = join(state, `projects-${name}`);
  cpSync(join(ROOT, "test/fixtures/projects/step"), join(root, "step"), { recursive: true });
  const mlproject = join(root, "step", "MLproject");
  writeFileSync(mlproject, readFileSync(mlproject, "utf8").replace("seconds: {type: float, default: 0}", `seconds: {type: float, default: ${seconds}}`));
  return root;
}

beforeAll(async () => {
  state = mkdtempSync(join(tmpdir(), "parallels-lost-cluster-"));
  // No minute ticker: the test fires the Cron Trigger itself, when the cluster is offline.
  env = await startEmbedded({ stateDir: state, adminToken: TOKEN, ports: "free", cronTriggers: false });
  for (const [name, seconds] of [
    ["a", 600],
    ["b", 0],
  ] as const) {
    const cluster = await api("POST", "/v1/clusters", { name, kind: "local", labels: { gpu: "true" } });
    expect(cluster.status).toBe(201);
    agents[name] = await startAgent({
      controlPlaneUrl: env.control.url,
      mlflowUrl: env.mlflow.url,
      stateDir: join(state, `agent-${name}`),
      projectsRoot: stepFor(name, seconds),
      pythonBinDir: env.mlflow.binDir,
      bootstrapToken: cluster.body.bootstrap.token,
      extraArgs: ["--heartbeat-seconds", "3", "--pull-expires-seconds", "5"],
    });
  }
  for (const name of ["a", "b"]) await waitFor(`cluster ${name} online`, async () => (await api("GET", `/v1/clusters/${name}`)).body.status === "online");
}, 600_000);

afterAll(async () => {
  if (agents.a) process.kill(agents.a.pid, "SIGCONT");
  for (const a of Object.values(agents)) await a.stop();
  // An agent's stop leaves its steps running (by design): end a's 10-minute step if the test
  // failed before the cancel did — its wrapper's process group, by the pid the wrapper wrote.
  const work = join(state ?? "", "agent-a/executor/work");
  for (const attempt of existsSync(work) ? readdirSync(work) : []) {
    const parts = join(work, attempt, "partitions");
    for (const p of existsSync(parts) ? readdirSync(parts) : []) {
      try {
        process.kill(-Number(readFileSync(join(parts, p, "pid"), "utf8").trim()), "SIGKILL");
      } catch {
        /* already gone */
      }
    }
  }
  await env?.stop();
  if (state) rmSync(state, { recursive: true, force: true });
});

describe("lost cluster", { timeout: 240_000 }, () => {
  it("retryElsewhere: a's agent frozen mid-step, the next attempt runs on b; a, thawed, stops the stale attempt (KILLED in MLflow) and changes nothing", async () => {
    const clusterId = async (name: string) => (await api("GET", `/v1/clusters/${name}`)).body.id as string;
    const [a, b] = [await clusterId("a"), await clusterId("b")];
    const dag = {
      name: "lost-cluster",
      onClusterLost: { policy: "retryElsewhere", grace: "1s" },
      nodes: [{ id: "train", project: { uri: "step" }, cluster: { gpu: "true" } }],
    };
    expect((await api("PUT", "/v1/dags/lost-cluster", dag)).status).toBeLessThan(300);
    const run = (await api("POST", "/v1/runs", { dag: "lost-cluster" })).body;
    const train = async () => (await api("GET", `/v1/runs/${run.id}`)).body.nodes[0];
    const first = await waitFor("train running on a with its MLflow run", async () => {
      const n = await train();
      return n.status === "running" && n.clusterId === a && n.mlflowRunId && n;
    });
    const mlflow = new MlflowClient({ trackingUri: env.mlflow.url });
    expect((await mlflow.getRun(first.mlflowRunId)).info.status).toBe("RUNNING");

    process.kill(agents.a!.pid, "SIGSTOP");
    await waitFor("cluster a offline", async () => (await api("GET", "/v1/clusters/a")).body.status === "offline", 90_000);
    // The silence counts from a's last word about the attempt too (an event may follow the last
    // heartbeat by a few seconds): fire the Cron Trigger every 2 s, as its minute ticks would, until it acts.
    const moved = await waitFor("attempt 2 on b", async () => {
      await fireCronTrigger(env.control.url);
      const n = await train();
      if (n.attempt === 1) await new Promise((r) => setTimeout(r, 2000));
      return n.attempt === 2 && n;
    });
    expect(moved).toMatchObject({ attempt: 2, clusterId: b });
    expect(moved.message).toMatch(/^cluster "a" lost .*retried on cluster "b" as attempt 2$/);

    const done = await waitFor("the run to succeed on b", async () => {
      const r = (await api("GET", `/v1/runs/${run.id}`)).body;
      return r.status === "succeeded" && r;
    });
    expect(done.nodes[0]).toMatchObject({ status: "succeeded", attempt: 2, clusterId: b });
    expect(done.nodes[0].mlflowRunId).not.toBe(first.mlflowRunId);

    // a comes back: it pulls the cancel of attempt 1 and stops it.
    process.kill(agents.a!.pid, "SIGCONT");
    await waitFor("a's stale attempt KILLED in MLflow", async () => (await mlflow.getRun(first.mlflowRunId)).info.status === "KILLED", 60_000);
    // The control plane marked it when it gave it up (so MLflow says so even if a never came back).
    expect((await mlflow.getRun(first.mlflowRunId)).data.tags["parallels.lost"]).toBe(moved.message);
    expect((await mlflow.getRun(done.nodes[0].mlflowRunId)).data.tags["parallels.lost"]).toBeUndefined();
    // Both attempts are children of the one parent run.
    const parent = done.mlflowRunId as string;
    for (const id of [first.mlflowRunId, done.nodes[0].mlflowRunId]) expect((await mlflow.getRun(id)).data.tags["mlflow.parentRunId"]).toBe(parent);
    // What a reported about its stale attempt changed nothing.
    await waitFor("cluster a online again", async () => (await api("GET", "/v1/clusters/a")).body.status === "online");
    const after = (await api("GET", `/v1/runs/${run.id}`)).body;
    expect(after).toMatchObject({ status: "succeeded", nodes: [{ status: "succeeded", attempt: 2, clusterId: b, mlflowRunId: done.nodes[0].mlflowRunId }] });
    const detail = (await api("GET", `/v1/runs/${run.id}/nodes/train`)).body;
    expect(detail.lostAttempts).toEqual([{ attempt: 1, clusterId: a, since: expect.any(String), at: expect.any(String) }]);
  });
});
