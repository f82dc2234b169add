/**
 * `{experiment, path?}` inputs against a real `mlflow server`: the runs a window keeps (MLflow's
 * own `attributes.end_time` filter, then each run's `endTime`), their artifacts listed below
 * `<runId>/` and downloaded as the Kubernetes executor's pods do (`listSource`,
 * `downloadSourceFiles`: the agent lists once, a pod downloads its slice), their metadata, a
 * `path` naming one file, and an experiment given by id or not found.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listFiles } from "../../agent/src/executor/shared/artifacts";
import { AttemptFailure } from "../../agent/src/executor/shared/errors";
import { experimentRunsFilter } from "../../agent/src/executor/shared/experiment-input";
import { downloadSourceFiles, listSource, resolveInputSources } from "../../agent/src/executor/shared/inputs";
import { sourceMetadata } from "../../agent/src/executor/shared/metadata-store";
import { MlflowClient } from "../../proto/mlflow";
import { MLFLOW_START_TIMEOUT_MS, startMlflowServer, type MlflowTestServer } from "../support/mlflow-server";

let server: MlflowTestServer;
let mlflow: MlflowClient;
let dir: string;
let ingest: string;
const T = Date.UTC(2026, 11, 1, 12, 0);
const W = { from: T, to: T + 60_000, skipIfEmpty: true };
const runs: Record<string, string> = {};

/** A run of the "ingest" experiment with `files`, ended with `status` at `endTime` (RUNNING: not ended). */
async function batch(name: string, status: "FINISHED" | "FAILED" | "RUNNING", endTime: number, files: Record<string, string>) {
  const run = await mlflow.createRun({ experimentId: ingest, runName: name, startTime: T - 3_600_000 });
  for (const [path, text] of Object.entries(files)) await mlflow.uploadArtifact(run.info.runId, path, text, "text/plain");
  if (status !== "RUNNING") await mlflow.terminateRun(run.info.runId, status, { endTime });
  runs[name] = run.info.runId;
}

beforeAll(async () => {
  server = await startMlflowServer();
  mlflow = new MlflowClient({ trackingUri: server.url });
  dir = mkdtempSync(join(tmpdir(), "parallels-experiment-input-"));
  ingest = (await mlflow.getOrCreateExperiment("ingest")).experimentId;
  await batch("before", "FINISHED", T - 1, { "batch/data.txt": "before" });
  await batch("first", "FINISHED", T, { "batch/data.txt": "first", "batch/sub/more.txt": "first more", "notes.txt": "outside path" });
  await batch("last", "FINISHED", T + 59_999, { "batch/data.txt": "last" });
  await batch("at-to", "FINISHED", T + 60_000, { "batch/data.txt": "at-to" });
  await batch("failed", "FAILED", T + 10, { "batch/data.txt": "failed" });
  await batch("running", "RUNNING", 0, { "batch/data.txt": "running" });
  // A sidecar stored as a step of ours would: `first`'s data.txt labelled.
  await mlflow.uploadArtifact(runs.first!, "parallels/metadata/outputs.jsonl", '{"path":"batch/data.txt","metadata":{"label":"cat"}}\n', "application/x-ndjson");
}, MLFLOW_START_TIMEOUT_MS);

afterAll(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const ctx = () => ({ mlflow, experimentId: "0", parentRunId: "p" });

describe("an {experiment} input on a real MLflow server", () => {
  it("MLflow filters runs on attributes.end_time: the search alone answers the FINISHED runs that ended in [from, to)", async () => {
    const found = await mlflow.searchAllRuns({ experimentIds: [ingest], filter: experimentRunsFilter(W) });
    expect(found.map((r) => r.info.runId).sort()).toEqual([runs.first, runs.last].sort());
  });

  it("the window's runs, listed once below <runId>/ and downloaded by slice, with their metadata", async () => {
    const sources = await resolveInputSources(ctx(), { x: { experiment: "ingest", path: "batch", window: { since: "lastRun" } } }, "Kubernetes", { x: W });
    expect(sources.x).toEqual({ runs: [runs.first, runs.last], path: "batch" });
    const files = await listSource(mlflow, sources.x!);
    expect(files).toEqual([`${runs.first}/data.txt`, `${runs.first}/sub/more.txt`, `${runs.last}/data.txt`].sort());
    // A pod's slice: one file of each run.
    const dest = join(dir, "slice");
    await downloadSourceFiles(mlflow, sources.x!, [`${runs.first}/sub/more.txt`, `${runs.last}/data.txt`], dest);
    expect(await listFiles(dest)).toEqual([`${runs.first}/sub/more.txt`, `${runs.last}/data.txt`].sort());
    expect(readFileSync(join(dest, runs.last!, "data.txt"), "utf8")).toBe("last");
    const metadata = await sourceMetadata(mlflow, sources.x!, files);
    expect([...metadata]).toEqual([[`${runs.first}/data.txt`, { label: "cat" }]]);
  });

  it("without a window: every FINISHED run; the executor's own artifacts left out without a path", async () => {
    const { x } = await resolveInputSources(ctx(), { x: { experiment: "ingest" } }, "Kubernetes");
    expect(x).toEqual({ runs: ["before", "first", "last", "at-to"].map((n) => runs[n]) });
    expect((await listSource(mlflow, x!)).filter((f) => f.startsWith(runs.first!))).toEqual([`${runs.first}/batch/data.txt`, `${runs.first}/batch/sub/more.txt`, `${runs.first}/notes.txt`]);
  });

  it("a path naming one file: that file of each run, under its name", async () => {
    const { x } = await resolveInputSources(ctx(), { x: { experiment: ingest, path: "batch/data.txt", window: { last: "1m" } } }, "Kubernetes", { x: W });
    const files = await listSource(mlflow, x!);
    expect(files).toEqual([`${runs.first}/data.txt`, `${runs.last}/data.txt`].sort());
    const dest = join(dir, "one-file");
    await downloadSourceFiles(mlflow, x!, files, dest);
    expect(readFileSync(join(dest, runs.first!, "data.txt"), "utf8")).toBe("first");
  });

  it("an experiment that does not exist is the attempt's failure, naming it", async () => {
    const missing = resolveInputSources(ctx(), { x: { experiment: "no-such-experiment" } }, "Kubernetes");
    await expect(missing).rejects.toBeInstanceOf(AttemptFailure);
    await expect(missing).rejects.toThrow("input 'x': no MLflow experiment named (or with id) 'no-such-experiment'");
    await expect(resolveInputSources(ctx(), { x: { experiment: "987654" } }, "Kubernetes")).rejects.toThrow("no MLflow experiment named (or with id) '987654'");
  });
});
