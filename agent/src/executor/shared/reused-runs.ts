/**
 * @module
 * The MLflow side of a resumed DAG run's `reused` nodes: each gets a child run under the new
 * parent, FINISHED, that says where its result comes from — tags `parallels.reusedFrom` =
 * `<oldRunId>/<oldNodeRunId>` and `parallels.outputsFrom` = the MLflow run holding its outputs
 * (nothing is copied: downstream inputs read that run's artifacts) — so the parent shows the
 * whole DAG. Made by the agent that finds or makes the parent (`parentRunFor`), from the start
 * message's `reused` list; found again by tag, so agents and restarts make each one once.
 *
 * The child carries the node tags (`parallels.role=node`, `parallels.nodeId`, attempt `0`), so a
 * lookup of a node's newest FINISHED run under the parent finds it, and follows `outputsFrom`.
 */
import { MLFLOW_TAGS, type MlflowClient } from "../../../../proto/mlflow";
import type { WorkStart } from "../../../../proto/messages";
import { launcherUser, PARALLELS_TAGS } from "./mlflow-runs";

export const REUSED_TAGS = Object.freeze({ reusedFrom: "parallels.reusedFrom", outputsFrom: "parallels.outputsFrom" } as const);

/** Makes (or finds) the child run of every reused node of `work` under `parentRunId`; returns their ids by node. */
export async function ensureReusedRuns(mlflow: MlflowClient, experimentId: string, parentRunId: string, work: WorkStart): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const reused = work.reused ?? [];
  if (reused.length === 0) return out;
  const existing = await mlflow.findRuns([experimentId], { parentRunId, tags: { [PARALLELS_TAGS.role]: "node", [PARALLELS_TAGS.runId]: work.runId, [PARALLELS_TAGS.attempt]: "0" } });
  for (const r of existing) {
    const nodeId = r.data.tags[PARALLELS_TAGS.nodeId];
    if (nodeId && r.data.tags[REUSED_TAGS.outputsFrom]) out.set(nodeId, r.info.runId);
  }
  for (const n of reused) {
    const found = out.get(n.nodeId);
    if (found) {
      // A run made by an agent that stopped before ending it.
      const run = existing.find((r) => r.info.runId === found);
      if (run && run.info.status !== "FINISHED") await mlflow.terminateRun(found, "FINISHED");
      continue;
    }
    const created = await mlflow.createRun({
      experimentId,
      parentRunId,
      runName: `${n.nodeId} (reused)`,
      tags: {
        [MLFLOW_TAGS.user]: launcherUser(),
        [PARALLELS_TAGS.role]: "node",
        [PARALLELS_TAGS.runId]: work.runId,
        [PARALLELS_TAGS.dag]: work.dag.name,
        [PARALLELS_TAGS.nodeId]: n.nodeId,
        [PARALLELS_TAGS.nodeRunId]: n.nodeRunId,
        [PARALLELS_TAGS.attempt]: "0",
        [REUSED_TAGS.reusedFrom]: `${n.from.runId}/${n.from.nodeRunId}`,
        [REUSED_TAGS.outputsFrom]: n.from.mlflowRunId,
      },
    });
    await mlflow.terminateRun(created.info.runId, "FINISHED");
    out.set(n.nodeId, created.info.runId);
  }
  return out;
}
