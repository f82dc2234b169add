/**
 * Crash points found by a chaos run (40 runs of the example DAG, one fault each), each now put
 * exactly where it hurt, with every component real and separate:
 * - the agent killed after the control plane told it the DAG run ended and before it closed the
 *   MLflow parent run (a fault-injecting proxy in front of `mlflow server` swallows the close);
 * - work submitted right after nats-server restarted, and after nats-server and the control
 *   plane both restarted: it reaches the agent without waiting for unrelated traffic (the agent
 *   heartbeats only every 60 s here; the old publisher waited for a heartbeat to wake it).
 * Latency figures for the second are in `npm run bench` (dispatch after a nats-server restart).
 */
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MlflowClient } from "../../proto/mlflow";
import { isTerminalRun } from "../../proto/status";
import { startAgent, type AgentProcess } from "../../scripts/local/agent";
import { ROOT, startControlPlane } from "../../scripts/local/control-plane";
import { startEmbedded, type Embedded } from "../../scripts/local/embedded";
import { startFaultProxy, type FaultProxy } from "../support/fault-proxy";

const TOKEN = "crash-points-token";
let env: Embedded;
let agent: AgentProcess;
let proxy: FaultProxy;
let state: string;
let step: string;
let mlflow: MlflowClient;

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
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (agent log: ${agent?.logFile})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// The agent talks to MLflow through the proxy; it heartbeats every 60 s only, so nothing in these tests waits on a heartbeat.
const startTheAgent = (bootstrapToken?: string) =>
  startAgent({
    controlPlaneUrl: env.control.url,
    mlflowUrl: proxy.url,
    stateDir: join(state, "agent"),
    projectsRoot: state,
    pythonBinDir: env.mlflow.binDir,
    bootstrapToken,
    extraArgs: ["--heartbeat-seconds", "60", "--pull-expires-seconds", "5"],
  });

const submitOneStep = async (name: string, parameters: Record<string, number> = {}) => {
  expect((await api("PUT", `/v1/dags/${name}`, { name, nodes: [{ id: "only", project: { uri: step }, parameters }] })).status).toBeLessThan(300);
  const run = await api("POST", "/v1/runs", { dag: name });
  expect(run.status).toBe(201);
  return run.body.id as string;
};
const finished = (id: string, timeoutMs = 60_000) =>
  waitFor(
    `run ${id} to finish`,
    async () => {
      const r = (await api("GET", `/v1/runs/${id}`)).body;
      return isTerminalRun(r.status) && r;
    },
    timeoutMs,
  );

beforeAll(async () => {
  state = mkdtempSync(join(tmpdir(), "parallels-crash-points-"));
  step = join(state, "step");
  cpSync(join(ROOT, "test/fixtures/projects/step"), step, { recursive: true });
  env = await startEmbedded({ stateDir: state, adminToken: TOKEN, ports: "free" });
  mlflow = new MlflowClient({ trackingUri: env.mlflow.url });
  proxy = await startFaultProxy(env.mlflow.url);
  const cluster = await api("POST", "/v1/clusters", { name: "local", kind: "local" });
  agent = await startTheAgent(cluster.body.bootstrap.token);
  await waitFor("the agent to register", async () => (await api("GET", "/v1/clusters/local")).body.status === "online");
}, 600_000);

afterAll(async () => {
  await agent?.stop();
  await proxy?.close();
  await env?.stop();
  if (state) rmSync(state, { recursive: true, force: true });
});

describe("crash points", { timeout: 180_000 }, () => {
  it("an agent killed between 'the DAG run ended' and closing its MLflow parent closes the parent after it restarts", async () => {
    // The one request that would end the parent run never reaches MLflow (armed before the run
    // starts: a quick step may end before a test polling the API learns the parent's id)…
    let parentId = "";
    const closing = proxy.swallow((r) => parentId !== "" && r.path.endsWith("/runs/update") && r.body.includes(parentId) && /FINISHED/.test(r.body));
    const id = await submitOneStep("crash-parent-close", { seconds: 2 });
    parentId = (await waitFor("the parent run id in the API", async () => (await api("GET", `/v1/runs/${id}`)).body.mlflowRunId)) as string;
    await Promise.race([closing, new Promise((_, fail) => setTimeout(() => fail(new Error(`the agent never tried to close the parent run (agent log: ${agent.logFile})`)), 60_000))]);
    expect((await api("GET", `/v1/runs/${id}`)).body.status).toBe("succeeded");
    // …and the agent dies right there.
    await agent.kill();
    proxy.heal();
    expect((await mlflow.getRun(parentId)).info.status).toBe("RUNNING");

    agent = await startTheAgent();
    const closed = await waitFor(
      "the parent run FINISHED",
      async () => {
        const p = await mlflow.getRun(parentId);
        return p.info.status === "FINISHED" && p;
      },
      60_000,
    );
    expect(closed.info.endTime).toBeGreaterThan(0);
    expect(closed.data.tags["parallels.role"]).toBe("dag-run");
  });

  it("work submitted right after a nats-server restart reaches the agent without waiting for a heartbeat", async () => {
    await env.restartNats();
    const id = await submitOneStep("crash-nats-restart");
    const run = await finished(id, 40_000);
    expect(run.status).toBe("succeeded");
  });

  it("work submitted right after nats-server and the control plane both restarted reaches the agent without waiting for a heartbeat", async () => {
    const port = Number(new URL(env.control.url).port);
    await env.control.stop();
    await env.restartNats();
    env.control = await startControlPlane({ stateDir: join(state, "control"), port, vars: env.controlVars, cronTriggers: true });
    const id = await submitOneStep("crash-both-restart");
    const run = await finished(id, 40_000);
    expect(run.status).toBe("succeeded");
  });
});
