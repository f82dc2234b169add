// examples/wordcount through the local executor and a real `mlflow server`: the three nodes of
// dag.yaml started by hand in order (as the control plane would dispatch them), projects and the
// corpus resolved against the example's folder. The merged counts must match the corpus.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLocalExecutor, type LocalExecutor } from "../../agent/src/executor/local/index";
import { recorder, uid } from "../../agent/src/executor/testing";
import { parseDagText, resolveNodeParams, upstreamOf } from "../../proto/dag/index";
import type { WorkStart } from "../../proto/messages";
import { MlflowClient } from "../../proto/mlflow/index";
import { MLFLOW_START_TIMEOUT_MS, startMlflowServer, type MlflowTestServer } from "../support/mlflow-server";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const exampleDir = join(repoRoot, "examples/wordcount");
let server: MlflowTestServer;
let mlflow: MlflowClient;
let executor: LocalExecutor;
let stateDir: string;

beforeAll(async () => {
  server = await startMlflowServer();
  mlflow = new MlflowClient({ trackingUri: server.url });
  stateDir = mkdtempSync(join(tmpdir(), "parallels-wordcount-"));
  executor = createLocalExecutor({ stateDir, trackingUri: server.url, projectsRoot: exampleDir, pythonBinDir: server.binDir, pollMs: 50 });
}, MLFLOW_START_TIMEOUT_MS);

afterAll(async () => {
  await executor?.close();
  await server?.stop();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

function expectedCounts(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const f of readdirSync(join(exampleDir, "corpus")).sort()) {
    for (const w of readFileSync(join(exampleDir, "corpus", f), "utf8")
      .toLowerCase()
      .match(/[a-z]+(?:'[a-z]+)*/g) ?? []) {
      counts.set(w, (counts.get(w) ?? 0) + 1);
    }
  }
  return counts;
}

describe("examples/wordcount", () => {
  it("split → count (4 partitions) → merge gives the counts of the corpus", async () => {
    const parsed = parseDagText(readFileSync(join(exampleDir, "dag.yaml"), "utf8"), "yaml");
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
    const dag = parsed.dag;
    const runId = uid("wc");
    const runIds = new Map<string, string>();
    const upstream = upstreamOf(dag);
    for (const node of dag.nodes) {
      const work: WorkStart = {
        type: "start",
        runId,
        nodeRunId: `${runId}.${node.id}`,
        nodeId: node.id,
        attempt: 1,
        dag: { name: dag.name, version: 1 },
        experiment: dag.experiment ?? dag.name,
        node: resolveNodeParams(node, dag.params ?? {}), // as the control plane dispatches it
        params: dag.params ?? {},
        upstream: upstream.get(node.id) ?? [],
        mlflowParentRunId: null,
      };
      const rec = recorder();
      await executor.start(work, rec);
      const end = await Promise.race([rec.waitFor("succeeded", 120_000), rec.waitFor("failed", 120_000)]);
      expect(end, JSON.stringify(end)).toMatchObject({ type: "succeeded" });
      runIds.set(node.id, rec.events[0]!.mlflowRunId!);
      if (node.id === "count") expect(end.counts).toEqual({ total: 4, done: 4, failed: 0, running: 0 });
    }

    const merge = runIds.get("merge")!;
    const counts = JSON.parse(await mlflow.downloadArtifactText(merge, "counts.json")) as Record<string, number>;
    expect(new Map(Object.entries(counts))).toEqual(expectedCounts());
    const summary = JSON.parse(await mlflow.downloadArtifactText(merge, "summary.json")) as { top: unknown; words: number };
    expect(summary.top).toEqual(JSON.parse(readFileSync(join(exampleDir, "expected-top.json"), "utf8")));
    expect(summary.words).toBe(2000);

    // MLflow: one parent, one child per node, 4 nested runs under count, all FINISHED.
    const count = await mlflow.getRun(runIds.get("count")!);
    const parentId = count.data.tags["mlflow.parentRunId"]!;
    expect((await mlflow.getRun(parentId)).info.status).toBe("RUNNING"); // until the control plane says the run is over
    await executor.runEnded(runId, "succeeded");
    const parent = await mlflow.getRun(parentId);
    expect(parent.info.runName).toBe(`wordcount-${runId}`);
    expect(parent.info.status).toBe("FINISHED");
    const children = await mlflow.childRuns([parent.info.experimentId], parentId);
    expect(children.map((r) => r.info.runName).sort()).toEqual(["count", "merge", "split"]);
    expect(children.every((r) => r.info.status === "FINISHED")).toBe(true);
    const nested = await mlflow.childRuns([parent.info.experimentId], count.info.runId);
    expect(nested).toHaveLength(4);
    expect(nested.every((r) => r.info.status === "FINISHED")).toBe(true);
    const split = await mlflow.getRun(runIds.get("split")!);
    expect(split.data.params).toEqual({ parts: "4", corpus: "''" });
    expect(split.data.tags["mlflow.source.name"]).toBe(`file://${repoRoot}#examples/wordcount/split`);
  }, 180_000);
});
