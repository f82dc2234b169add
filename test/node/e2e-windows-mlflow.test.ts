/**
 * Windows on an MLflow experiment's runs end to end on the embedded default (issue 12), every
 * component real: nats-server, `mlflow server`, the control plane under `wrangler dev`, the agent
 * as its own process. An "ingest" experiment gets runs as a writer would log micro-batches (each a
 * `batch/data.txt`, ended FINISHED at a time the test gives); a DAG whose step reads
 * `{experiment: "ingest", path: "batch", window: {since: lastRun}}`, one partition per run, is run
 * through the API (no schedule: `since: lastRun` then starts where the DAG's last successful run's
 * window ended). Every run that ended is processed exactly once across the DAG's runs — also the
 * ones of a DAG run that failed (the next successful one takes them) and one that was still
 * running when a window closed (taken by the window it ended in); FAILED runs and files outside
 * `path` never are; a window with nothing in it succeeds without running a step.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MlflowClient } from "../../proto/mlflow";
import type { AgentProcess } from "../../scripts/local/agent";
import type { Embedded } from "../../scripts/local/embedded";
import { e2eApi } from "../support/e2e-api";
import { startLocalStack } from "../support/e2e-stack";
import { nodeRuns } from "../support/e2e-mlflow";

const TOKEN = "e2e-admin-token";
const DAG = "e2e-windows-mlflow";
let env: Embedded;
let agent: AgentProcess;
let state: string;
let mlflow: MlflowClient;
let ingest: string;
let CONTROL: string;

const e2e = e2eApi({ url: () => env.control.url, token: TOKEN, explain: () => `agent log: ${agent?.logFile}` });
const api = e2e.call;

/** A micro-batch logged as a writer would: a run with `batch/data.txt` (and a file outside `path`), ended with `status` at `endTime`. */
async function logBatch(name: string, status: "FINISHED" | "FAILED" | "RUNNING", endTime = Date.now()): Promise<string> {
  const run = await mlflow.createRun({ experimentId: ingest, runName: name });
  await mlflow.uploadArtifact(run.info.runId, "batch/data.txt", `${name}\n`);
  await mlflow.uploadArtifact(run.info.runId, "notes.txt", "not in path\n");
  if (status !== "RUNNING") await mlflow.terminateRun(run.info.runId, status, { endTime });
  return run.info.runId;
}

/** Starts a run of the DAG; it ends with its windows fixed at its start. */
async function runDag(): Promise<{ id: string; run: any }> {
  const submitted = await api("POST", "/v1/runs", { dag: DAG });
  expect(submitted.status, JSON.stringify(submitted.body)).toBe(201);
  const id = submitted.body.id as string;
  return { id, run: await e2e.finished(id, 60_000) };
}

/** The ingest runs the `process` node's FINISHED MLflow run made outputs for. */
async function processed(runId: string): Promise<string[]> {
  const [node] = ((await nodeRuns(mlflow, runId, DAG)).get("process") ?? []).filter((r) => r.info.status === "FINISHED");
  if (!node) return [];
  return (await mlflow.listArtifactsRecursive(node.info.runId, ""))
    .map((f) => f.path)
    .filter((p) => p.startsWith("done-"))
    .map((p) => (p.slice("done-".length).split("_") as [string, string]).join("/"))
    .sort();
}

beforeAll(async () => {
  state = mkdtempSync(join(tmpdir(), "parallels-e2e-windows-mlflow-"));
  const projects = join(state, "projects");
  CONTROL = join(projects, "control");
  mkdirSync(CONTROL, { recursive: true });
  // One partition per ingest run; each writes `done-<runId>_<file>` for what it got.
  // `control/fail` makes every partition exit 1.
  const step = join(projects, "step");
  mkdirSync(step);
  writeFileSync(join(step, "MLproject"), 'entry_points:\n  main:\n    parameters:\n      control: string\n    command: "python3 step.py {control}"\n');
  writeFileSync(
    join(step, "step.py"),
    [
      "import json, os, pathlib, sys",
      "if (pathlib.Path(sys.argv[1]) / 'fail').exists():",
      "    print('told to fail', file=sys.stderr)",
      "    sys.exit(1)",
      "inputs = pathlib.Path(os.environ['PARALLELS_INPUTS_DIR'])",
      "for rel in json.loads(pathlib.Path(os.environ['PARALLELS_PARTITION_MANIFEST']).read_text()):",
      "    assert (inputs / rel).read_text().strip(), rel",
      "    item = rel.split('/', 1)[1]  # below inputs/batches/: <runId>/data.txt",
      "    pathlib.Path(os.environ['PARALLELS_OUTPUTS_DIR'], 'done-' + item.replace('/', '_')).write_text(item)",
    ].join("\n"),
  );
  ({ env, mlflow, agent } = await startLocalStack({ stateDir: state, adminToken: TOKEN, projectsRoot: projects, cronTriggers: false }));
  ingest = (await mlflow.getOrCreateExperiment("ingest")).experimentId;
  const dag = {
    name: DAG,
    nodes: [
      {
        id: "process",
        project: { uri: step },
        parameters: { control: CONTROL },
        inputs: { batches: { experiment: "ingest", path: "batch", window: { since: "lastRun" } } },
        partition: { by: "object", input: "batches" },
        parallelism: 4,
      },
    ],
  };
  expect((await api("PUT", `/v1/dags/${DAG}`, dag)).status).toBeLessThan(300);
}, 300_000);

afterAll(async () => {
  await agent?.stop();
  await env?.stop();
  if (state && !process.env.KEEP_E2E_STATE) rmSync(state, { recursive: true, force: true });
});

describe("windows on an MLflow experiment's runs, end to end", { timeout: 300_000 }, () => {
  it("{experiment: ingest} with {since: lastRun}: every FINISHED run once by its end time, across a failed DAG run; an empty window skips", async () => {
    const done = (id: string) => `${id}/data.txt`;
    // Run 1, window [0, its start): the batches that ended before it; not a FAILED one, not one still running.
    const a1 = await logBatch("a1", "FINISHED", Date.now() - 3_600_000);
    const a2 = await logBatch("a2", "FINISHED");
    await logBatch("broken", "FAILED");
    const slow = await logBatch("slow", "RUNNING");
    const r1 = await runDag();
    expect(r1.run.status, JSON.stringify(r1.run.nodes)).toBe("succeeded");
    const w1 = r1.run.windows["process.batches"];
    expect(w1.from).toBe(new Date(0).toISOString());
    expect(await processed(r1.id)).toEqual([done(a1), done(a2)].sort());

    // Run 2 fails: what ended in its window stays for the next successful run.
    const b1 = await logBatch("b1", "FINISHED");
    await mlflow.terminateRun(slow, "FINISHED"); // ends now: after run 1's window closed
    writeFileSync(join(CONTROL, "fail"), "");
    const r2 = await runDag();
    rmSync(join(CONTROL, "fail"));
    expect(r2.run.status, JSON.stringify(r2.run.nodes)).toBe("failed");
    expect(r2.run.nodes[0].partitions).toMatchObject({ total: 2, failed: 2 }); // b1, slow

    // Run 3 takes run 2's window and its own: [run 1's end, its start).
    const c1 = await logBatch("c1", "FINISHED");
    const r3 = await runDag();
    expect(r3.run.status, JSON.stringify(r3.run.nodes)).toBe("succeeded");
    expect(r3.run.windows["process.batches"].from).toBe(w1.to);
    expect(await processed(r3.id)).toEqual([done(b1), done(c1), done(slow)].sort());

    // Run 4: nothing ended since — succeeds without running a partition, and says so.
    const r4 = await runDag();
    expect(r4.run.status, JSON.stringify(r4.run.nodes)).toBe("succeeded");
    expect(r4.run.nodes[0].message).toMatch(/window was empty/);
    expect(r4.run.nodes[0].partitions).toMatchObject({ total: 0 });
    expect(await processed(r4.id)).toEqual([]);

    // The node's MLflow run names the window it covered.
    const [node3] = (await nodeRuns(mlflow, r3.id, DAG)).get("process")!;
    expect(node3!.data.tags["parallels.window.batches"]).toBe(`${r3.run.windows["process.batches"].from}/${r3.run.windows["process.batches"].to}`);
  });
});
