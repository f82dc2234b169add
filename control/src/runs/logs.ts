/**
 * A step's log as the agent uploads it to MLflow — while it runs and at its end — served by the
 * control plane, so a client follows it with one URL and an offset, and reads it after the
 * process or pod is gone. Where it is (the executors write it there):
 * - a partition with a nested run of its own: `parallels/logs/<stream>.log` of that run;
 * - a partition beyond the agent's limit of nested runs (either executor): `parallels/logs/partition-<i>/<stream>.log` of the node's run;
 * - an unpartitioned step: `parallels/logs/<stream>.log` of the node's run.
 */
import { isMlflowApiError, MlflowClient } from "../../../proto/mlflow";
import type { Env } from "../env";
import { ApiError } from "../errors";

export type LogStream = "stdout" | "stderr";

export interface NodeLog {
  /** The bytes from `offset` on. */
  bytes: Uint8Array;
  /** The whole log's size now: the next read of a follower starts there. */
  size: number;
}

/** MLflow as the control plane reaches it (`MLFLOW_TRACKING_URI`, `MLFLOW_TRACKING_TOKEN`). */
export function controlPlaneMlflow(env: Env): MlflowClient {
  if (!env.MLFLOW_TRACKING_URI) throw new ApiError("unavailable", "the control plane does not know MLflow's address (set the Worker var MLFLOW_TRACKING_URI): logs are read from MLflow");
  return new MlflowClient({ trackingUri: env.MLFLOW_TRACKING_URI, ...(env.MLFLOW_TRACKING_TOKEN ? { token: env.MLFLOW_TRACKING_TOKEN } : {}), retry: { maxRetries: 1 } });
}

export async function readNodeLog(mlflow: MlflowClient, nodeMlflowRunId: string, opts: { partition?: number; stream: LogStream; offset: number }): Promise<NodeLog | null> {
  const file = `${opts.stream}.log`;
  const candidates: { runId: string; path: string }[] = [];
  if (opts.partition === undefined) candidates.push({ runId: nodeMlflowRunId, path: `parallels/logs/${file}` });
  else {
    const node = await mlflow.getRun(nodeMlflowRunId);
    const [own] = await mlflow.findRuns([node.info.experimentId], { parentRunId: nodeMlflowRunId, tags: { "parallels.role": "partition", "parallels.partition.index": String(opts.partition) } });
    if (own) candidates.push({ runId: own.info.runId, path: `parallels/logs/${file}` });
    candidates.push({ runId: nodeMlflowRunId, path: `parallels/logs/partition-${opts.partition}/${file}` });
  }
  for (const c of candidates) {
    let bytes: Uint8Array;
    try {
      bytes = await mlflow.downloadArtifact(c.runId, c.path);
    } catch (e) {
      if (isMlflowApiError(e) && e.status === 404) continue;
      throw e;
    }
    return { bytes: bytes.subarray(Math.min(opts.offset, bytes.length)), size: bytes.length };
  }
  return null;
}
