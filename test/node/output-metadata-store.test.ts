/**
 * Output metadata through a real `mlflow server` (shared/metadata-store.ts): sidecars checked and
 * stored per sidecar, and read back for a downstream input — along a partition retry's chain of
 * runs (the newer run's sidecar wins), below an input's `path`, and from runs that stored none.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkOutputsMetadata, mergedSidecars, readInputMetadata, sourceMetadata, uploadMetadata } from "../../agent/src/executor/shared/metadata-store";
import { MlflowClient } from "../../proto/mlflow";
import { MLFLOW_START_TIMEOUT_MS, startMlflowServer, type MlflowTestServer } from "../support/mlflow-server";

let server: MlflowTestServer;
let mlflow: MlflowClient;
let dir: string;

beforeAll(async () => {
  server = await startMlflowServer();
  mlflow = new MlflowClient({ trackingUri: server.url });
  dir = mkdtempSync(join(tmpdir(), "parallels-metadata-"));
}, MLFLOW_START_TIMEOUT_MS);

afterAll(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** An outputs folder with `files` and the partitions' sidecars `sidecars` (index → lines), stored on a new run. */
async function attemptRun(experimentId: string, name: string, files: string[], sidecars: Record<number, object[]>, merged = false): Promise<string> {
  const out = join(dir, name);
  mkdirSync(join(out, ".metadata"), { recursive: true });
  for (const f of files) {
    mkdirSync(join(out, f, ".."), { recursive: true });
    writeFileSync(join(out, f), f);
  }
  for (const [i, lines] of Object.entries(sidecars)) writeFileSync(join(out, ".metadata", `${i}.jsonl`), lines.map((l) => `${JSON.stringify(l)}\n`).join(""));
  const checked = await checkOutputsMetadata(out);
  expect(checked.problems).toEqual([]);
  const run = await mlflow.createRun({ experimentId, runName: name });
  // A pod stores its own sidecar; the local executor the attempt's, merged into one file.
  const stored = merged ? mergedSidecars(checked.stored) : checked.stored;
  await uploadMetadata(mlflow, run.info.runId, stored);
  await uploadMetadata(mlflow, run.info.runId, stored); // a resumed end stores the same again
  return run.info.runId;
}

describe("output metadata in MLflow", () => {
  it("reads back along a retry chain (newer sidecars win), below an input's path, and nothing from runs without any", { timeout: 60_000 }, async () => {
    const { experimentId } = await mlflow.getOrCreateExperiment("output-metadata");
    // Attempt 1: partitions 0 and 1 labelled; partition 1's label is replaced by the retry's.
    const first = await attemptRun(experimentId, "attempt-1", ["img/a.png", "img/b.png", "top.txt"], {
      0: [
        { path: "img/a.png", metadata: { label: "cat" } },
        { path: "top.txt", metadata: { k: 1 } },
      ],
      1: [{ path: "img/b.png", metadata: { label: "stale" } }],
    });
    const retry = await attemptRun(experimentId, "attempt-2", ["img/b.png"], { 1: [{ path: "img/b.png", metadata: { label: "dog", ok: true } }] });
    expect(await mlflow.listArtifactsRecursive(retry, "parallels/metadata")).toEqual([expect.objectContaining({ path: "parallels/metadata/1.jsonl" })]);

    const all = await readInputMetadata(mlflow, [retry, first], undefined, ["img/a.png", "img/b.png", "top.txt", "img/c.png"]);
    expect(Object.fromEntries(all)).toEqual({ "img/a.png": { label: "cat" }, "img/b.png": { label: "dog", ok: true }, "top.txt": { k: 1 } });
    // An input of `path: img` sees its files re-rooted; only the files asked for.
    expect(Object.fromEntries(await sourceMetadata(mlflow, { runId: retry, path: "img", from: [first] }, ["a.png", "b.png"]))).toEqual({
      "a.png": { label: "cat" },
      "b.png": { label: "dog", ok: true },
    });
    expect(Object.fromEntries(await sourceMetadata(mlflow, { runId: first, path: "img" }, ["b.png"]))).toEqual({ "b.png": { label: "stale" } });
    // The same chain stored the local executor's way (one merged file per attempt) reads the same.
    const firstMerged = await attemptRun(
      experimentId,
      "attempt-1m",
      ["img/a.png", "img/b.png", "top.txt"],
      {
        0: [
          { path: "img/a.png", metadata: { label: "cat" } },
          { path: "top.txt", metadata: { k: 1 } },
        ],
        1: [{ path: "img/b.png", metadata: { label: "stale" } }],
      },
      true,
    );
    const retryMerged = await attemptRun(experimentId, "attempt-2m", ["img/b.png"], { 1: [{ path: "img/b.png", metadata: { label: "dog", ok: true } }] }, true);
    expect((await mlflow.listArtifactsRecursive(firstMerged, "parallels/metadata")).map((f) => f.path)).toEqual(["parallels/metadata/outputs.jsonl"]);
    expect(await readInputMetadata(mlflow, [retryMerged, firstMerged], undefined, ["img/a.png", "img/b.png", "top.txt", "img/c.png"])).toEqual(all);
    // A run no step stored metadata on: nothing, and no error.
    const plain = await mlflow.createRun({ experimentId, runName: "plain" });
    await mlflow.uploadArtifact(plain.info.runId, "x.txt", "x", "text/plain");
    expect((await readInputMetadata(mlflow, [plain.info.runId], undefined, ["x.txt"])).size).toBe(0);
  });
});
