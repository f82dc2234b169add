/**
 * @module
 * Partition-level failure and retry (issue 12), shared by the executors. Within an attempt a
 * failing partition does not stop its siblings (as Kubernetes Indexed Jobs with
 * `backoffLimitPerIndex`); when the attempt ends with some partitions failed and others
 * succeeded, its `failed` event names the failed ones ({@link partialFailure}), and the control
 * plane's next attempt carries `WorkStart.retry`: run only those ({@link retryPlan}), with the
 * manifest of the attempt before (so indexes keep their meaning), counting the earlier
 * successes as done.
 *
 * Where the outputs of a node retried this way are: each attempt uploads what its own partitions
 * wrote to its own MLflow run, and tags it `parallels.outputsFrom` = the run of the attempt it
 * continues (the chain can be longer: a retry of a retry). Readers of a node's outputs (the
 * shared input resolver) take the union along that chain, newer runs winning on equal paths.
 * Chosen over copying the earlier outputs into the new run because an attempt's outputs folder is
 * shared by its partitions, so which file belongs to which succeeded partition is not known, and
 * copying would upload again what the succeeded partitions made (the issue asks that nothing of
 * them is uploaded again). The cost: files a failed partition left before failing stay in the
 * union unless its retry writes the same paths.
 */
import { type PartitionFailure, MAX_PARTITION_FAILURES } from "../../../../proto/agent";
import { formatIndexes, parseIndexes } from "../../../../proto/indexes";
import { isMlflowApiError, type MlflowClient } from "../../../../proto/mlflow";
import type { WorkStart } from "../../../../proto/messages";
import { MANIFEST_VERSION, type Manifest } from "./manifest";

/** Tags on a node attempt's MLflow run about its partitions. */
export const PARTITION_TAGS = Object.freeze({
  /** The run of the attempt this one continues (a partition retry): its outputs count as this run's too. */
  outputsFrom: "parallels.outputsFrom",
  /** The partitions this attempt ran, when not all (a partition retry), e.g. `"3,7"`. */
  ranPartitions: "parallels.partitions.ran",
  /** The partitions that failed in this attempt when others succeeded, e.g. `"3,7"`. */
  failedPartitions: "parallels.partitions.failed",
  /**
   * `<runId>/<nodeRunId>`: the node run of another DAG run this attempt continues (a resumed
   * run's: `outputsFrom` is then that node run's MLflow run, under the other run's parent).
   */
  continues: "parallels.continues",
} as const);

/** Where the node's partition manifest is stored on each attempt's run. */
export const MANIFEST_ARTIFACT = "parallels/manifest.json"; // below OWN_ARTIFACTS (artifacts.ts imports this module)

/** What a partition retry runs: the indexes, out of how many, and how many succeeded before. */
export interface RetryPlan {
  /** The partitions to run (indexes of the node's partitions, ascending, below `total`). */
  indexes: number[];
  total: number;
  /** Partitions that succeeded in earlier attempts (counted as done by this one). */
  doneBefore: number;
  /** The run of the attempt before, where the others' outputs and the manifest are. */
  previousRunId: string;
  /** That attempt is another DAG run's (a resumed run continues it): its node run. */
  from?: { runId: string; nodeRunId: string };
}

/** The plan of a partition retry, or undefined when `work` is a whole attempt (or a retry without the earlier run: then all run again). */
export function retryPlan(work: Pick<WorkStart, "retry">): RetryPlan | undefined {
  const r = work.retry;
  if (!r?.mlflowRunId) return undefined;
  const indexes = parseIndexes(r.partitions).filter((i) => i < r.total);
  if (indexes.length === 0) return undefined;
  return { indexes, total: r.total, doneBefore: r.total - indexes.length, previousRunId: r.mlflowRunId, ...(r.from ? { from: r.from } : {}) };
}

/** The tags of an attempt's MLflow run that runs `plan` (what it continues, and which partitions it ran). */
export function retryTags(plan: RetryPlan): Record<string, string> {
  return {
    [PARTITION_TAGS.outputsFrom]: plan.previousRunId,
    [PARTITION_TAGS.ranPartitions]: formatIndexes(plan.indexes),
    ...(plan.from ? { [PARTITION_TAGS.continues]: `${plan.from.runId}/${plan.from.nodeRunId}` } : {}),
  };
}

/**
 * The manifest of the attempt before (so a partition's index means the same files), or
 * undefined when it is missing or does not match the retry (then the whole node runs again).
 */
export async function previousManifest(mlflow: MlflowClient, plan: RetryPlan): Promise<Manifest | undefined> {
  let text: string;
  try {
    text = await mlflow.downloadArtifactText(plan.previousRunId, MANIFEST_ARTIFACT);
  } catch (e) {
    if (isMlflowApiError(e) && (e.status === 404 || e.status === 400)) return undefined;
    throw e; // MLflow unreachable: the preparation is retried
  }
  let m: Manifest;
  try {
    m = JSON.parse(text) as Manifest;
  } catch {
    return undefined;
  }
  if (m?.version !== MANIFEST_VERSION || !Array.isArray(m.partitions) || m.count !== plan.total || m.partitions.length !== m.count) return undefined;
  return m;
}

/** One partition's end as an executor saw it. */
export interface PartitionEnd {
  index: number;
  /** 0: succeeded. null: ended without one (killed, vanished, never started). */
  exitCode: number | null;
  reason?: string;
  /** The last lines of its stderr (may be read lazily: only the first 50 failures are asked). */
  stderr?: () => Promise<string>;
}

/** What a `failed` event says about failed partitions. */
export interface PartialFailure {
  /** Set only when some partitions of the node succeeded (in this attempt or before). */
  failedPartitions?: string;
  partitionFailures: PartitionFailure[];
  /** A failed partition exited with one of the node's `noRetryExitCodes`. */
  final: boolean;
  message: string;
}

/**
 * The failure report of an attempt whose partitions ended as `ends` (those it ran), or
 * undefined when none failed. `doneBefore`: partitions of the node that succeeded in earlier
 * attempts; `total`: all the node's partitions.
 */
export async function partialFailure(
  ends: readonly PartitionEnd[],
  o: { total: number; doneBefore: number; nested: boolean; noRetryExitCodes?: readonly number[] },
): Promise<PartialFailure | undefined> {
  const failed = ends.filter((e) => e.exitCode !== 0).sort((a, b) => a.index - b.index);
  if (failed.length === 0) return undefined;
  const done = o.doneBefore + ends.filter((e) => e.exitCode === 0).length;
  const partitionFailures: PartitionFailure[] = [];
  for (const f of failed.slice(0, MAX_PARTITION_FAILURES)) {
    const pf: PartitionFailure = { index: f.index, exitCode: f.exitCode };
    if (f.reason) pf.reason = f.reason.slice(0, 200);
    const stderr = f.stderr ? await f.stderr().catch(() => "") : "";
    if (stderr) pf.stderr = stderr.slice(-2000);
    partitionFailures.push(pf);
  }
  const final = failed.some((f) => f.exitCode !== null && (o.noRetryExitCodes ?? []).includes(f.exitCode));
  const first = partitionFailures[0]!;
  const how = (f: PartitionFailure) => (f.exitCode === null ? `ended without an exit code${f.reason ? ` (${f.reason})` : ""}` : `exited with code ${f.exitCode}`);
  let message: string;
  if (!o.nested) {
    message = `the step ${how(first)}${first.stderr ? `; last lines of stderr:\n${first.stderr}` : " (stderr was empty)"}`;
  } else {
    const list = formatIndexes(failed.map((f) => f.index));
    message = `${failed.length} of ${o.total} partitions failed (${list}); partition ${first.index} ${how(first)}${first.stderr ? `; last lines of stderr:\n${first.stderr}` : " (stderr was empty)"}`;
  }
  const out: PartialFailure = { partitionFailures, final, message: message.slice(0, 4000) };
  if (o.nested && done > 0) out.failedPartitions = formatIndexes(failed.map((f) => f.index));
  return out;
}
