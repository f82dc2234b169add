/**
 * @module
 * Where a partition's MLflow record goes — one rule for both executors (issue 12). A node of up to
 * `maxPartitionRuns` partitions (agent flag `--max-partition-runs`, default 100) gets a nested
 * MLflow run per partition, with its own logs, status and the step's metrics. Beyond that, runs
 * per partition would make MLflow's load and its runs table grow with the partition count (each
 * run costs a search, a create, its params and an end: 4–6 requests), so a partition has no run
 * of its own: its logs go under the node's run at `parallels/logs/partition-<i>/` (what the
 * control plane's log reader looks for), and the node's run holds the partitions table
 * (`parallels/partitions.json`: each partition's status, exit code, duration, items and log
 * paths), written by the executor at the end of the attempt and, while it runs, now and then.
 */
import { OWN_ARTIFACTS } from "./artifacts";
import type { Manifest } from "./manifest";

/** Default of `--max-partition-runs`. */
export const DEFAULT_MAX_PARTITION_RUNS = 100;

/** Where the partitions table is on the node attempt's run (beyond the limit of nested runs). */
export const PARTITIONS_TABLE_ARTIFACT = `${OWN_ARTIFACTS}/partitions.json`;

/** Whether each partition of a node with this manifest gets a nested MLflow run of its own. */
export function hasPartitionRuns(manifest: Pick<Manifest, "nested" | "count">, maxPartitionRuns: number): boolean {
  return manifest.nested && manifest.count > 0 && manifest.count <= maxPartitionRuns;
}

/**
 * The artifact folder of a partition's logs: its own run's `parallels/logs`, or — for a partition
 * of a node beyond the limit (no run of its own) — a folder of its own under the node's run.
 */
export function partitionLogsDir(index: number, ownRun: boolean, nested: boolean): string {
  return nested && !ownRun ? `${OWN_ARTIFACTS}/logs/partition-${index}` : `${OWN_ARTIFACTS}/logs`;
}

/** One row of the partitions table. */
export interface PartitionRow {
  index: number;
  status: "pending" | "running" | "succeeded" | "failed" | "killed";
  /** The step's exit code; null when it ended without one (killed, vanished). */
  exitCode?: number | null;
  /** Why it ended when not by itself (timeout, cancelled, vanished, spawn). */
  reason?: string;
  startedAt?: number;
  durationMs?: number;
  /** Items of the partitioned input it was given. */
  items: number;
  /** Artifact paths of its logs on the node's run (those that were not empty). */
  logs: string[];
}

/** The partitions table as stored: the attempt's partitions (a partition retry's: only those it ran), by index. */
export interface PartitionsTable {
  version: 1;
  /** The node's partitions (all of them, also on a partition retry). */
  total: number;
  /** When this version of the table was written (it is rewritten while the attempt runs). */
  writtenAt: number;
  partitions: PartitionRow[];
}

export function partitionsTable(total: number, rows: PartitionRow[], now: number): PartitionsTable {
  return { version: 1, total, writtenAt: now, partitions: [...rows].sort((a, b) => a.index - b.index) };
}
