/**
 * @module
 * An attempt's end: its outputs go up to the node's MLflow run (unless cancelled), the run is
 * ended with the matching status, the record takes its final phase and the final event is
 * reported, then the attempt's folder goes. `finishing` and the outcome are saved first, so an
 * end interrupted (MLflow down, agent killed) is carried on with the same outcome.
 */
import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import type { AttemptOutcome } from "../../../../../proto/status";
import type { AttemptReport } from "../../types";
import { uploadDir } from "../../shared/artifacts";
import { isSidecar, sidecarPath } from "../../shared/metadata";
import { checkOutputsMetadata, mergedSidecars, metadataRefusal, uploadMetadata } from "../../shared/metadata-store";
import { endRun, MLFLOW_END_STATUS } from "../../shared/mlflow-runs";
import { PARTITION_TAGS } from "../../shared/partitions";
import { failureFields, partitionCounts } from "../state";
import type { AttemptScope } from "./scope";
import { uploadPartitionsTable } from "./table";

/**
 * Ends the attempt with `outcome`. `reported` is called once the final event is out, before the
 * folder is removed (the attempt needs no process slot from then on). Rejects when MLflow is not
 * reachable; calling it again carries on.
 */
export async function finishAttempt(a: AttemptScope, outcome: AttemptOutcome, reported: () => void): Promise<void> {
  const { ctx, rec } = a;
  const nodeRunId = rec.mlflow?.nodeRunId;
  const outputs = join(rec.dir, "outputs");
  // The steps' metadata sidecars, checked against the outputs (the same answer on a resumed end).
  // A failed partition's sidecar is neither checked nor stored: it may have stopped mid-line,
  // and its retry writes it again.
  const failed = new Set((rec.partitions ?? []).filter((p) => p.state === "exited" && p.exitCode !== 0).map((p) => sidecarPath(p.index)));
  const metadata = outcome !== "cancelled" && nodeRunId && existsSync(outputs) ? await checkOutputsMetadata(outputs, (rel) => !failed.has(rel)) : undefined;
  if (rec.phase !== "finishing" && outcome !== "cancelled" && metadata?.problems.length) {
    // A sidecar that does not hold fails the node: its dependants would partition on metadata
    // that is not there. The whole node runs again (a partition retry would keep the outputs of
    // the partition whose sidecar was refused). Decided once: a resumed end keeps the saved outcome.
    rec.message = [metadataRefusal(metadata.problems), outcome === "failed" ? rec.message : undefined].filter(Boolean).join("; ").slice(0, 4000);
    outcome = "failed";
    delete rec.failedPartitions;
    delete rec.partitionFailures;
  }
  if (rec.phase !== "finishing" || rec.outcome !== outcome) {
    rec.phase = "finishing";
    rec.outcome = outcome;
    await a.save();
  }
  if (nodeRunId) {
    if (outcome !== "cancelled" && existsSync(outputs)) {
      // Sidecars are not outputs: stored checked, merged into parallels/metadata/outputs.jsonl.
      await uploadDir(ctx.mlflow, nodeRunId, outputs, "", 8, (rel) => !isSidecar(rel));
      if (metadata?.problems.length) ctx.log.warn(a.logCtx({ problems: metadata.problems }), "output metadata refused; the sidecars that hold are stored");
      if (metadata?.stored.size) await uploadMetadata(ctx.mlflow, nodeRunId, mergedSidecars(metadata.stored));
    }
    // Which partitions failed while others succeeded: readers of the node's outputs accept such a
    // FAILED run as the node's (the control plane may accept it under `minSuccessRatio`).
    if (outcome === "failed" && rec.failedPartitions) await ctx.mlflow.setTag(nodeRunId, PARTITION_TAGS.failedPartitions, rec.failedPartitions);
    // Beyond the limit of nested runs: the partitions table, as the attempt ended.
    await uploadPartitionsTable(a);
    // Nested runs of partitions that never ran stay out; those that ran were ended when they exited.
    await endRun(ctx.mlflow, nodeRunId, MLFLOW_END_STATUS[outcome], ctx.now());
  }
  // The parent run stays as it is: the DAG run may go on (other nodes, a retry); the control
  // plane says when it is over and the executor's `runEnded` ends the parent then.
  rec.phase = outcome;
  await a.save();
  const event: AttemptReport = { type: outcome };
  if (rec.partitions) event.counts = partitionCounts(rec);
  if (outcome === "failed" && rec.message) event.message = rec.message.slice(0, 4000);
  if (outcome === "succeeded" && rec.skipped) event.message = rec.skipped.slice(0, 4000);
  if (outcome === "failed") Object.assign(event, failureFields(rec));
  if (outcome === "cancelled") event.message = "cancelled";
  if (outcome === "succeeded" && rec.cachedFrom) {
    event.cachedFrom = rec.cachedFrom;
    if (rec.cacheWarning) event.message = rec.cacheWarning;
  }
  a.report(event);
  rec.runningReported = true;
  rec.finalReported = true;
  await a.save();
  ctx.log.info(a.logCtx({ outcome, message: rec.message }), "attempt ended");
  reported();
  if (!ctx.keepWorkDirs) await rm(rec.dir, { recursive: true, force: true }).catch(() => undefined);
}
