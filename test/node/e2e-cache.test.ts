/**
 * Caching end to end on the embedded default (nats-server, `mlflow server`, the control plane under
 * `wrangler dev`, the agent as its own process): a three-step DAG with `cache: true` run twice
 * without change — the second run starts no step process (the steps' trace file says so), every
 * node is `cached` from the first run, and MLflow shows each as a FINISHED child run of the new
 * parent tagged `parallels.cachedFrom`; a change of the last step's parameter runs only that step,
 * which reads the cached steps' outputs by reference (from the first run's MLflow runs); changing
 * one input file of the first step re-runs all three; a hit older than `maxAge` runs again.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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
const node = (run: any, id: string) => run.nodes.find((n: any) => n.nodeId === id);

/** The MLflow run ids the steps' processes ran with, in order (the fixture appends a line per process). */
const processRuns = (): string[] =>
  existsSync(trace)
    ? readFileSync(trace, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => l.split(" ")[1]!)
    : [];

const childrenOf = (parentRunId: string) => childrenOfRun(mlflow, parentRunId);

beforeAll(async () => {
  state = mkdtempSync(join(tmpdir(), "parallels-e2e-cache-"));
  projects = join(state, "projects");
  cpSync(join(ROOT, "test/fixtures/projects/step"), join(projects, "step"), { recursive: true });
  // The last step: with its marker there it never fails, and writes every input file's path and content.
  cpSync(join(ROOT, "test/fixtures/projects/fail-once"), join(projects, "fail-once"), { recursive: true });
  mkdirSync(join(projects, "data"));
  writeFileSync(join(projects, "data", "input.txt"), "version 1\n");
  trace = join(state, "trace.txt");
  ({ env, mlflow, agent } = await startLocalStack({ stateDir: state, adminToken: TOKEN, projectsRoot: projects, agentArgs: ["--logs-every-seconds", "1"], agentEnv: { STEP_TRACE_FILE: trace } }));
}, 600_000);

afterAll(async () => {
  await agent?.stop();
  await env?.stop();
  if (state) rmSync(state, { recursive: true, force: true });
});

describe("cache, end to end", { timeout: 300_000 }, () => {
  it("a second run with no change runs nothing; a changed input re-runs all three; a hit older than maxAge runs again", async () => {
    const markers = [join(state, "marker-1"), join(state, "marker-2")];
    for (const m of markers) writeFileSync(m, "there\n");
    const dag = (cache: unknown, marker = markers[0]) => ({
      name: "e2e-cache",
      cache,
      nodes: [
        { id: "first", project: { uri: join(projects, "step") }, inputs: { data: { uri: join(projects, "data", "input.txt") } } },
        { id: "second", project: { uri: join(projects, "step") }, inputs: { prev: { node: "first" } }, parameters: { seconds: 0 } },
        { id: "third", project: { uri: join(projects, "fail-once") }, inputs: { a: { node: "first" }, b: { node: "second" } }, parameters: { marker } },
      ],
    });
    expect((await api("PUT", "/v1/dags/e2e-cache", dag(true))).status).toBeLessThan(300);
    const first = await finished((await api("POST", "/v1/runs", { dag: "e2e-cache" })).body.id);
    expect(first.status).toBe("succeeded");
    expect(statuses(first)).toEqual({ first: "succeeded", second: "succeeded", third: "succeeded" });
    expect(processRuns()).toHaveLength(3);

    // The same again: every node cached from the first run, no step process started.
    const t0 = Date.now();
    const again = await finished((await api("POST", "/v1/runs", { dag: "e2e-cache" })).body.id);
    const tookMs = Date.now() - t0;
    console.log(`second run, all three steps cached: ${tookMs} ms from submit to succeeded`);
    expect(again.status).toBe("succeeded");
    expect(statuses(again)).toEqual({ first: "cached", second: "cached", third: "cached" });
    expect(again.counters).toMatchObject({ cached: 3, succeeded: 0 });
    for (const id of ["first", "second", "third"]) {
      expect(node(again, id).cachedFrom).toEqual({ runId: first.id, nodeRunId: `${first.id}-${id}`, mlflowRunId: node(first, id).mlflowRunId });
    }
    expect(processRuns()).toHaveLength(3);
    expect(tookMs).toBeLessThan(20_000);
    // MLflow: under the new parent, each node is a FINISHED run saying where its result is.
    const children = await childrenOf(again.mlflowRunId);
    expect([...children.keys()].sort()).toEqual(["first", "second", "third"]);
    for (const id of ["first", "second", "third"]) {
      const runs = children.get(id)!;
      expect(runs).toHaveLength(1);
      expect(runs[0]!.info.runId).toBe(node(again, id).mlflowRunId);
      expect(runs[0]!.info.status).toBe("FINISHED");
      expect(runs[0]!.data.tags).toMatchObject({ "parallels.cachedFrom": `${first.id}/${first.id}-${id}`, "parallels.outputsFrom": node(first, id).mlflowRunId });
    }

    // The last step's parameter changes: only it runs, on the first run's outputs of the cached two (by reference).
    expect((await api("PUT", "/v1/dags/e2e-cache", dag(true, markers[1]))).status).toBeLessThan(300);
    const lastChanged = await finished((await api("POST", "/v1/runs", { dag: "e2e-cache" })).body.id);
    expect(statuses(lastChanged)).toEqual({ first: "cached", second: "cached", third: "succeeded" });
    expect(processRuns()).toHaveLength(4);
    const read = await mlflow.downloadArtifactText(node(lastChanged, "third").mlflowRunId, "out.txt");
    expect(read).toContain(`a/out.txt: run ${node(first, "first").mlflowRunId}`);
    expect(read).toContain(`b/out.txt: run ${node(first, "second").mlflowRunId}`);

    // One input file of the first step changes: all three run (each one's inputs changed in turn).
    writeFileSync(join(projects, "data", "input.txt"), "version 2\n");
    const changed = await finished((await api("POST", "/v1/runs", { dag: "e2e-cache" })).body.id);
    expect(changed.status).toBe("succeeded");
    expect(statuses(changed)).toEqual({ first: "succeeded", second: "succeeded", third: "succeeded" });
    expect(processRuns()).toHaveLength(7);
    // The third step read the new outputs of the first two.
    const out = await mlflow.downloadArtifactText(node(changed, "third").mlflowRunId, "out.txt");
    expect(out).toContain(`a/out.txt: run ${node(changed, "first").mlflowRunId}`);
    expect(out).toContain(`b/out.txt: run ${node(changed, "second").mlflowRunId}`);

    // maxAge: a hit older than it runs again. Nothing changed since `changed`, whose results are now older than 2 s.
    expect((await api("PUT", "/v1/dags/e2e-cache", dag({ maxAge: "2s" }, markers[1]))).status).toBeLessThan(300);
    const changedEnd = Date.parse(node(changed, "first").finishedAt);
    await new Promise((r) => setTimeout(r, Math.max(0, changedEnd + 2500 - Date.now())));
    const stale = await finished((await api("POST", "/v1/runs", { dag: "e2e-cache" })).body.id);
    expect(stale.status).toBe("succeeded");
    expect(node(stale, "first")).toMatchObject({ status: "succeeded", cachedFrom: null });
    expect(processRuns()).toContain(node(stale, "first").mlflowRunId);
  });
});
