/**
 * End to end on the embedded default, every component real and separate: nats-server
 * (operator mode), `mlflow server`, the control plane under `wrangler dev`, and the agent as its
 * own process with the local executor. The example DAG, then faults: the agent SIGKILLed and
 * restarted, nats-server restarted, the control plane unreachable for a while, a failing step
 * retried, a cancel — each ending as it should, with every step run once per attempt.
 */
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MlflowClient, type Run } from "../../proto/mlflow";
import { isTerminalRun } from "../../proto/status";
import { startAgent, type AgentProcess } from "../../scripts/local/agent";
import { ROOT, startControlPlane } from "../../scripts/local/control-plane";
import { startEmbedded, type Embedded } from "../../scripts/local/embedded";

const TOKEN = "e2e-admin-token";
let env: Embedded;
let agent: AgentProcess;
let state: string;
let mlflow: MlflowClient;
/** The agent reads local projects only below its projects root: the example and the step fixture are copied there. */
let projects: string;
let STEP: string;
/** Each run of the step fixture appends "<pid> <MLFLOW_RUN_ID>" here. */
let trace: string;

async function api(method: string, path: string, body?: unknown, type = "application/json") {
  const res = await fetch(env.control.url + path, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": type },
    body: typeof body === "string" ? body : body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

const agentOptions = () => ({
  controlPlaneUrl: env.control.url,
  mlflowUrl: env.mlflow.url,
  stateDir: join(state, "agent"),
  projectsRoot: projects,
  pythonBinDir: env.mlflow.binDir,
  extraArgs: ["--pull-expires-seconds", "5", "--logs-every-seconds", "1"],
  env: { STEP_TRACE_FILE: trace },
});

/** The runs of the step fixture, by MLflow run id: how many processes ran with that run id. */
function stepRuns(): Map<string, number> {
  const by = new Map<string, number>();
  if (!existsSync(trace)) return by;
  for (const line of readFileSync(trace, "utf8").split("\n").filter(Boolean)) {
    const runId = line.split(" ")[1]!;
    by.set(runId, (by.get(runId) ?? 0) + 1);
  }
  return by;
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (agent log: ${agent?.logFile})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const runOf = async (id: string) => (await api("GET", `/v1/runs/${id}`)).body;
const finished = (id: string, timeoutMs = 90_000) =>
  waitFor(
    `run ${id} to finish`,
    async () => {
      const r = await runOf(id);
      return isTerminalRun(r.status) ? r : undefined;
    },
    timeoutMs,
  );
const nodeStatus = (id: string, nodeId: string, status: string) => waitFor(`${nodeId} ${status}`, async () => (await runOf(id)).nodes.find((n: any) => n.nodeId === nodeId && n.status === status));

/** The MLflow runs Parallels made for one DAG run: its node runs (per attempt), by node id. */
async function nodeRunsInMlflow(runId: string): Promise<Map<string, Run[]>> {
  const experiment = await mlflow.getExperimentByName((await runOf(runId)).dag);
  const runs = await mlflow.searchAllRuns({ experimentIds: [experiment!.experimentId], filter: `tags.\`parallels.runId\` = '${runId}' and tags.\`parallels.role\` = 'node'` });
  const by = new Map<string, Run[]>();
  for (const r of runs) by.set(r.data.tags["parallels.nodeId"]!, [...(by.get(r.data.tags["parallels.nodeId"]!) ?? []), r]);
  return by;
}

async function submit(name: string, nodes: unknown[], extra: Record<string, unknown> = {}) {
  expect((await api("PUT", `/v1/dags/${name}`, { name, nodes, ...extra })).status).toBeLessThan(300);
  const run = await api("POST", "/v1/runs", { dag: name });
  expect(run.status).toBe(201);
  return run.body.id as string;
}

beforeAll(async () => {
  state = mkdtempSync(join(tmpdir(), "parallels-e2e-"));
  projects = join(state, "projects");
  cpSync(join(ROOT, "examples/wordcount"), projects, { recursive: true });
  STEP = join(projects, "_step-fixture");
  cpSync(join(ROOT, "test/fixtures/projects/step"), STEP, { recursive: true });
  trace = join(state, "step-trace.txt");
  env = await startEmbedded({ stateDir: state, adminToken: TOKEN, ports: "free" });
  mlflow = new MlflowClient({ trackingUri: env.mlflow.url });
  const cluster = await api("POST", "/v1/clusters", { name: "local", kind: "local" });
  agent = await startAgent({ ...agentOptions(), bootstrapToken: cluster.body.bootstrap.token });
  await waitFor("the agent to register", async () => (await api("GET", "/v1/clusters/local")).body.status === "online");
}, 600_000);

afterAll(async () => {
  await agent?.stop();
  await env?.stop();
  if (state) rmSync(state, { recursive: true, force: true });
});

describe("the embedded default, end to end", { timeout: 180_000 }, () => {
  it("runs the example DAG: MLflow holds the parent and one child per node, and the counts are right", async () => {
    const yaml = readFileSync(join(ROOT, "examples/wordcount/dag.yaml"), "utf8");
    expect((await api("PUT", "/v1/dags/wordcount", yaml, "application/yaml")).status).toBeLessThan(300);
    const { body: submitted } = await api("POST", "/v1/runs", { dag: "wordcount", params: { top: 5 } });
    const run = await finished(submitted.id);
    expect(run.status).toBe("succeeded");
    expect(run.nodes.map((n: any) => [n.nodeId, n.status, n.attempt])).toEqual([
      ["count", "succeeded", 1],
      ["merge", "succeeded", 1],
      ["split", "succeeded", 1],
    ]);
    expect(run.nodes.find((n: any) => n.nodeId === "count").partitions).toMatchObject({ total: 4, done: 4, failed: 0 });

    const byNode = await nodeRunsInMlflow(submitted.id);
    expect([...byNode.keys()].sort()).toEqual(["count", "merge", "split"]);
    const parents = new Set<string>();
    for (const [nodeId, runs] of byNode) {
      expect(runs, nodeId).toHaveLength(1);
      const r = runs[0]!;
      expect(r.info.status).toBe("FINISHED");
      expect(r.info.endTime).toBeGreaterThan(0);
      expect(r.data.tags).toMatchObject({ "mlflow.source.type": "PROJECT", "mlflow.project.entryPoint": "main" });
      parents.add(r.data.tags["mlflow.parentRunId"]!);
      expect(run.nodes.find((n: any) => n.nodeId === nodeId).mlflowRunId).toBe(r.info.runId);
    }
    expect(parents.size).toBe(1);
    const parent = await mlflow.getRun([...parents][0]!);
    expect(parent.info.runName).toBe(`wordcount-${submitted.id}`);
    // The API names the same parent (the agent reported it with the first step), linked in the MLflow UI.
    expect(parent.data.tags["parallels.role"]).toBe("dag-run");
    expect(run).toMatchObject({ mlflowRunId: parent.info.runId, mlflowUrl: `${env.mlflow.url}/#/runs/${parent.info.runId}`, mlflowNote: null });
    // An experiment the agent made opens on MLflow 3's runs table, not on its GenAI overview.
    expect((await mlflow.getExperiment(parent.info.experimentId)).tags).toMatchObject({ "mlflow.experimentKind": "custom_model_development" });
    // The control plane says the run ended (in its answer to the last events); the agent closes the parent.
    const closed = await waitFor(
      "the parent run FINISHED",
      async () => {
        const p = await mlflow.getRun(parent.info.runId);
        return p.info.status === "FINISHED" && p;
      },
      30_000,
    );
    expect(closed.info.endTime).toBeGreaterThan(0);
    const countRun = byNode.get("count")![0]!;
    const partitions = await mlflow.childRuns([countRun.info.experimentId], countRun.info.runId);
    expect(partitions).toHaveLength(4);

    const counts = JSON.parse(await mlflow.downloadArtifactText(byNode.get("merge")![0]!.info.runId, "counts.json")) as Record<string, number>;
    const expected = JSON.parse(readFileSync(join(ROOT, "examples/wordcount/expected-top.json"), "utf8")) as [string, number][];
    expect(Object.entries(counts).slice(0, expected.length)).toEqual(expected);
    // The run's DAG param reached the step (`top: ${params.top}`) and MLflow logged it.
    const merge = byNode.get("merge")![0]!;
    const summary = JSON.parse(await mlflow.downloadArtifactText(merge.info.runId, "summary.json")) as { top: [string, number][] };
    expect(summary.top).toEqual(expected.slice(0, 5));
    expect(merge.data.params).toMatchObject({ top: "5" });
  });

  it("survives the agent being SIGKILLed mid-step and restarted: the step ends once, the run succeeds", async () => {
    const id = await submit("e2e-agent-kill", [
      { id: "slow", project: { uri: STEP }, parameters: { seconds: 4 } },
      { id: "after", project: { uri: STEP }, inputs: { prev: { node: "slow" } } },
    ]);
    await nodeStatus(id, "slow", "running");
    await agent.kill();
    agent = await startAgent(agentOptions()); // stored credentials: no bootstrap token
    const run = await finished(id);
    expect(run.status).toBe("succeeded");
    expect(run.nodes.every((n: any) => n.attempt === 1)).toBe(true);
    const byNode = await nodeRunsInMlflow(id);
    expect(byNode.get("slow")).toHaveLength(1);
    expect(byNode.get("after")).toHaveLength(1);
    const out = await mlflow.downloadArtifactText(byNode.get("after")![0]!.info.runId, "out.txt");
    expect(out).toContain("prev/out.txt");
    // Every step ran exactly once (one process per step and attempt), the killed agent's one included.
    const runs = stepRuns();
    expect([byNode.get("slow")![0]!, byNode.get("after")![0]!].map((r) => runs.get(r.info.runId))).toEqual([1, 1]);
  });

  it("serves a running step's log while it runs (following it by offset), and still after the agent is SIGKILLed", async () => {
    const id = await submit("e2e-logs", [{ id: "talk", project: { uri: STEP }, parameters: { ticks: 16, seconds: 1 } }]);
    await nodeStatus(id, "talk", "running");
    const logs = async (offset: number) => {
      const res = await fetch(`${env.control.url}/v1/runs/${id}/nodes/talk/logs?stream=stderr&offset=${offset}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      return { status: res.status, text: await res.text(), size: Number(res.headers.get("x-log-size")) };
    };
    // Follow it: each read from where the last one ended, until a few lines are in while the step still runs.
    let text = "";
    let offset = 0;
    await waitFor("log lines while the step runs", async () => {
      const r = await logs(offset);
      if (r.status === 200) {
        text += r.text;
        offset = r.size;
      }
      return /tick 3\n/.test(text);
    });
    expect((await runOf(id)).nodes[0].status).toBe("running");
    expect(text).toMatch(/^tick 0\ntick 1\ntick 2\ntick 3\n/);
    // Logs outlive the process that uploaded them.
    await agent.kill();
    const after = await logs(0);
    expect(after.status).toBe(200);
    expect(after.text.startsWith(text)).toBe(true);
    agent = await startAgent(agentOptions());
    expect((await finished(id)).status).toBe("succeeded");
    const full = await logs(0);
    expect(full.text).toContain("tick 15\n");
    expect((await fetch(`${env.control.url}/v1/runs/${id}/nodes/talk/logs?stream=stdout&partition=9`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(404);
  });

  it("survives a nats-server restart mid-run", async () => {
    const id = await submit("e2e-nats-restart", [
      { id: "first", project: { uri: STEP }, parameters: { seconds: 2 } },
      { id: "second", project: { uri: STEP }, after: ["first"] },
    ]);
    await nodeStatus(id, "first", "running");
    await env.restartNats();
    const run = await finished(id);
    expect(run.status).toBe("succeeded");
    expect(run.nodes.map((n: any) => n.attempt)).toEqual([1, 1]);
  });

  it("delays but loses no report while the control plane is unreachable", async () => {
    const id = await submit("e2e-control-down", [
      { id: "work", project: { uri: STEP }, parameters: { seconds: 3 } },
      { id: "next", project: { uri: STEP }, after: ["work"] },
    ]);
    await nodeStatus(id, "work", "running");
    const port = Number(new URL(env.control.url).port);
    await env.control.stop();
    // The step ends while nobody listens: its end waits in the agent's event journal.
    const journal = join(state, "agent", "events.jsonl");
    await waitFor("the step's end in the agent's event journal", async () => existsSync(journal) && readFileSync(journal, "utf8").includes('"type":"succeeded"'));
    env.control = await startControlPlane({ stateDir: join(state, "control"), port, vars: env.controlVars, cronTriggers: true });
    const run = await finished(id);
    expect(run.status).toBe("succeeded");
    expect(run.nodes.map((n: any) => n.attempt)).toEqual([1, 1]);
  });

  it("retries a failing step up to `retries`, then fails the run; MLflow shows each attempt FAILED", async () => {
    const id = await submit("e2e-retries", [
      { id: "broken", project: { uri: STEP }, parameters: { exit_code: 3 }, retries: 1 },
      { id: "never", project: { uri: STEP }, after: ["broken"] },
    ]);
    const run = await finished(id);
    expect(run.status).toBe("failed");
    expect(run.nodes.map((n: any) => [n.nodeId, n.status, n.attempt])).toEqual([
      ["broken", "failed", 2],
      ["never", "skipped", 0],
    ]);
    expect(run.nodes[0].message).toMatch(/exited with code 3/);
    const attempts = (await nodeRunsInMlflow(id)).get("broken")!;
    expect(attempts.map((r) => [r.data.tags["parallels.attempt"], r.info.status]).sort()).toEqual([
      ["1", "FAILED"],
      ["2", "FAILED"],
    ]);
    const parent = await waitFor(
      "the parent run FAILED",
      async () => {
        const p = await mlflow.getRun(attempts[0]!.data.tags["mlflow.parentRunId"]!);
        return p.info.status === "FAILED" && p;
      },
      30_000,
    );
    expect(parent.info.endTime).toBeGreaterThan(0);
    // Each attempt ran once.
    const runs = stepRuns();
    expect(attempts.map((r) => runs.get(r.info.runId))).toEqual([1, 1]);
  });

  it("cancels: the running process is stopped and MLflow shows it KILLED", async () => {
    const id = await submit("e2e-cancel", [{ id: "long", project: { uri: STEP }, parameters: { seconds: 120 } }]);
    await nodeStatus(id, "long", "running");
    expect((await api("POST", `/v1/runs/${id}/cancel`)).body.status).toBe("cancelling");
    const run = await finished(id, 30_000); // the step would sleep 120 s: it was stopped
    expect(run.status).toBe("cancelled");
    const [r] = (await nodeRunsInMlflow(id)).get("long")!;
    expect(r!.info.status).toBe("KILLED");
    const parent = await waitFor(
      "the parent run KILLED",
      async () => {
        const p = await mlflow.getRun(r!.data.tags["mlflow.parentRunId"]!);
        return p.info.status === "KILLED" && p;
      },
      30_000,
    );
    expect(parent.info.endTime).toBeGreaterThan(0);
  });
});
