/**
 * @module
 * The partitions table of an attempt beyond the limit of nested runs (shared/partition-runs.ts),
 * uploaded to the node attempt's run: now and then while it runs, and at its end.
 */
import { type PartitionRow, PARTITIONS_TABLE_ARTIFACT, partitionsTable } from "../../shared/partition-runs";
import type { PartitionRecord } from "../state";
import type { AttemptScope } from "./scope";

function rowOf(p: PartitionRecord, items: number, now: number): PartitionRow {
  const status: PartitionRow["status"] =
    p.state === "pending" ? "pending" : p.state === "running" ? "running" : p.exitCode === 0 ? "succeeded" : p.endReason === "cancelled" || p.endReason === "failFast" ? "killed" : "failed";
  const row: PartitionRow = { index: p.index, status, items, logs: p.logs ?? [] };
  if (p.state === "exited") row.exitCode = p.exitCode ?? null;
  if (p.endReason) row.reason = p.endReason;
  if (p.startedAt !== undefined) {
    row.startedAt = p.startedAt;
    row.durationMs = (p.endedAt ?? now) - p.startedAt;
  }
  return row;
}

/** Uploads the table when the attempt's partitions have no runs of their own; nothing otherwise. */
export async function uploadPartitionsTable(a: AttemptScope): Promise<void> {
  const { rec, ctx } = a;
  const manifest = rec.manifest;
  const nodeRunId = rec.mlflow?.nodeRunId;
  if (!manifest?.nested || rec.partitionRuns || !nodeRunId || !rec.partitions) return;
  const now = ctx.now();
  const rows = rec.partitions.map((p) => rowOf(p, manifest.partitions[p.index]?.files.length ?? 0, now));
  const table = partitionsTable(rec.retry?.total ?? manifest.count, rows, now);
  await ctx.mlflow.uploadArtifact(nodeRunId, PARTITIONS_TABLE_ARTIFACT, JSON.stringify(table), "application/json");
}
