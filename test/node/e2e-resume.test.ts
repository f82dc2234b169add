/**
 * Resume end to end on the embedded default (nats-server, `mlflow server`, the control plane under
 * `wrangler dev`, the agent as its own process): a three-step DAG whose last step fails the first
 * time it runs (a marker file); the run fails; resuming it runs only the last step, which reads the
 * first steps' outputs from their old MLflow runs, and MLflow shows the reused steps as FINISHED
 * child runs of the new parent. Resuming again with a changed parameter of the second step runs
 * the second and third steps only.
 */
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MlflowClient } from "../../proto/mlflow";
import type { AgentProcess } from "../../scripts/local/agent";
import { ROOT } from "../../scripts/local/control-plane";
import type { Embedded } from "../../scripts/local/embedded";
import { e2eApi } from "../support/e2e-api";
import { startLocalStack } from "../support/e2e-stack";
import { childrenOf as childrenOfRun } from "../support/e2e-mlflow";

const TOKEN = "e2e-admin-token";
let env: Embedded;
let agent: AgentProcess;
let state: string;
let mlflow: MlflowClient;
let projects: string;
let trace: string;

const e2e = e2eApi({ url: () => env.control.url, token: TOKEN, explain: () => `agent log: ${agent?.logFile}` });
const api = e2e.call;

const finished = (id: string) => e2e.finished(id, 90_000);
const statuses = (run: any) => Object.fromEntries(run.nodes.map((n: any) => [n.nodeId, n.status]));

/** How many processes ran with each MLflow run id (the fixtures append a line per run). */
function processRuns(): Map<string, number> {
  const by = new Map<string, number>();
  if (!existsSync(trace)) return by;
  for (const line of readFileSync(trace, "utf8").split("\n").filter(Boolean)) {
    const runId = line.split(" ")[1]!;
    by.set(runId, (by.get(runId) ?? 0) + 1);
  }
  return by;
}

const childrenOf = (parentRunId: string) => childrenOfRun(mlflow, parentRunId);

beforeAll(async () => {
  state = mkdtempSync(join(tmpdir(), "parallels-e2e-resume-"));
  projects = join(state, "projects");
  cpSync(join(ROOT, "test/fixtures/projects/step"), join(projects, "step"), { recursive: true });
  cpSync(join(ROOT, "test/fixtures/projects/fail-once"), join(projects, "fail-once"), { recursive: true });
  trace = join(state, "trace.txt");
  ({ env, mlflow, agent } = await startLocalStack({ stateDir: state, adminToken: TOKEN, projectsRoot: projects, agentArgs: ["--logs-every-seconds", "1"], agentEnv: { STEP_TRACE_FILE: trace } }));
}, 600_000);

afterAll(async () => {
  await agent?.stop();
  await env?.stop();
  if (state) rmSync(state, { recursive: true, force: true });
});

describe("resume, end to end", { timeout: 300_000 }, () => {
  it("runs only the failed step, on the first steps' old outputs; MLflow shows the reused steps under the new parent; a changed param re-runs from its step", async () => {
    const marker = join(state, "marker");
    const dag = {
      name: "e2e-resume",
      params: { wait: 0 },
      nodes: [
        { id: "first", project: { uri: join(projects, "step") } },
        { id: "second", project: { uri: join(projects, "step") }, inputs: { prev: { node: "first" } }, parameters: { seconds: "${params.wait}" } },
        { id: "last", project: { uri: join(projects, "fail-once") }, inputs: { a: { node: "first" }, b: { node: "second" } }, parameters: { marker } },
      ],
    };
    expect((await api("PUT", "/v1/dags/e2e-resume", dag)).status).toBeLessThan(300);
    const submitted = await api("POST", "/v1/runs", { dag: "e2e-resume" });
    const failed = await finished(submitted.body.id);
    expect(failed.status).toBe("failed");
    expect(statuses(failed)).toEqual({ first: "succeeded", second: "succeeded", last: "failed" });
    const old = Object.fromEntries(failed.nodes.map((n: any) => [n.nodeId, n.mlflowRunId as string]));

    // Resume: the first two are reused, only the last runs.
    const resumed = await api("POST", `/v1/runs/${failed.id}/resume`);
    expect(resumed.status).toBe(201);
    expect(statuses(resumed.body)).toEqual({ first: "reused", second: "reused", last: "dispatched" });
    const run = await finished(resumed.body.id);
    expect(run.status).toBe("succeeded");
    expect(run).toMatchObject({ resumedFrom: failed.id });
    expect(statuses(run)).toEqual({ first: "reused", second: "reused", last: "succeeded" });
    for (const id of ["first", "second"]) {
      expect(run.nodes.find((n: any) => n.nodeId === id).reusedFrom).toEqual({ runId: failed.id, nodeRunId: `${failed.id}-${id}`, mlflowRunId: old[id] });
    }
    // The last step read the old runs' outputs.
    const last = run.nodes.find((n: any) => n.nodeId === "last");
    const out = await mlflow.downloadArtifactText(last.mlflowRunId, "out.txt");
    expect(out).toContain(`a/out.txt: run ${old.first}`);
    expect(out).toContain(`b/out.txt: run ${old.second}`);
    // MLflow: under the new parent, the reused steps are FINISHED runs saying where their result is; the last ran there.
    const children = await childrenOf(run.mlflowRunId);
    expect([...children.keys()].sort()).toEqual(["first", "last", "second"]);
    for (const id of ["first", "second"]) {
      const [child] = children.get(id)!;
      expect(children.get(id)).toHaveLength(1);
      expect(child!.info.status).toBe("FINISHED");
      expect(child!.data.tags).toMatchObject({ "parallels.reusedFrom": `${failed.id}/${failed.id}-${id}`, "parallels.outputsFrom": old[id] });
    }
    expect(children.get("last")![0]!.info.runId).toBe(last.mlflowRunId);
    // The first two steps ran once in all; the last twice (failed, then resumed).
    const runs = processRuns();
    expect([runs.get(old.first!), runs.get(old.second!), runs.get(old.last!), runs.get(last.mlflowRunId)]).toEqual([1, 1, 1, 1]);
    expect([...runs.values()].reduce((a, b) => a + b, 0)).toBe(4);

    // Resume the failed run again with the second step's param changed: the second and last run, the first is reused.
    const changed = await api("POST", `/v1/runs/${failed.id}/resume`, { params: { wait: 0.1 } });
    expect(changed.status).toBe(201);
    expect(statuses(changed.body)).toEqual({ first: "reused", second: "dispatched", last: "pending" });
    const again = await finished(changed.body.id);
    expect(again.status).toBe("succeeded");
    expect(statuses(again)).toEqual({ first: "reused", second: "succeeded", last: "succeeded" });
    const second = again.nodes.find((n: any) => n.nodeId === "second").mlflowRunId;
    const out2 = await mlflow.downloadArtifactText(again.nodes.find((n: any) => n.nodeId === "last").mlflowRunId, "out.txt");
    expect(out2).toContain(`a/out.txt: run ${old.first}`);
    expect(out2).toContain(`b/out.txt: run ${second}`);
    expect(processRuns().get(old.first!)).toBe(1);
  });
});
