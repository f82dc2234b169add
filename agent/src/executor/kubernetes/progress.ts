/**
 * How a Job and its pods read as an attempt's progress (pure): partition counters as the Job
 * controller counts them, why pods wait (Unschedulable with the scheduler's words,
 * ImagePullBackOff…), and — once the Job is Complete or Failed — the attempt's end with the failed
 * indexes and each one's exit code, reason (OOMKilled, DeadlineExceeded…) and last words. All in
 * the node's partition numbers: a partition retry's Job is read through {@link nodeView} first.
 */
import { type PartialFailure, type PartitionEnd, partialFailure } from "../shared/partitions";
import { METADATA_REFUSED } from "../shared/metadata-store";
import type { ObservedJob, ObservedPod } from "./observed";
import { partitionOfIndex } from "./pod-attempt";
import { METADATA_REFUSED_EXIT } from "./pod-layout";
import type { JobRecord } from "./record";

export interface Counts {
  total: number;
  done: number;
  failed: number;
  running: number;
}

export interface Progress {
  counts: Counts;
  /** Why some pods are not running, while the Job goes on. */
  waiting: string | null;
  end: { outcome: "succeeded" | "failed"; message: string | null } | null;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** Why pods wait, grouped by reason: "2 pods Unschedulable: 0/3 nodes are available: …". */
function waitingOf(pods: Iterable<ObservedPod>): string | null {
  const by = new Map<string, { n: number; message: string | undefined }>();
  for (const p of pods) {
    if (!p.waiting || p.phase === "Succeeded" || p.phase === "Failed") continue;
    const g = by.get(p.waiting.reason) ?? { n: 0, message: p.waiting.message };
    g.n++;
    by.set(p.waiting.reason, g);
  }
  if (by.size === 0) return null;
  return [...by].map(([reason, g]) => `${plural(g.n, "pod")} ${reason}${g.message ? `: ${g.message.trim()}` : ""}`).join("; ");
}

/** One failed index in words: "partition 3 exited with code 42 (Error): <end of stderr>". */
function failureOf(index: number, pod: ObservedPod | undefined, total: number): string {
  const where = total > 1 ? `partition ${index}` : "the step";
  const t = pod?.step;
  if (!t) return `${where} failed${pod?.waiting ? ` (${pod.waiting.reason}${pod.waiting.message ? `: ${pod.waiting.message}` : ""})` : ""}`;
  const reason = t.reason && t.reason !== "Error" ? ` (${t.reason})` : "";
  const tail = t.message?.trim();
  // The step succeeded but its metadata sidecar was refused (the wrapper's exit code and words): say that, as the local executor does.
  if (t.exitCode === METADATA_REFUSED_EXIT && tail?.startsWith(`${METADATA_REFUSED}: `)) return `${where}: ${tail}`;
  return `${where} exited with code ${t.exitCode}${reason}${tail ? `; last lines of stderr:\n${tail}` : ""}`;
}

/** What the Job controller said when it gave up, in the node's words. */
function jobFailure(reason: string | undefined, message: string | undefined, timeoutSeconds: number | undefined): string {
  switch (reason) {
    case "DeadlineExceeded":
      return `the node's timeout${timeoutSeconds ? ` (${timeoutSeconds} s)` : ""} passed before every partition ended`;
    case "FailedIndexes":
    case "MaxFailedIndexesExceeded":
      return "partitions failed after their retries";
    case "PodFailurePolicy":
      return "a partition exited with a code the step marked as not worth retrying";
    case "BackoffLimitExceeded":
      return "the pods failed more often than the node's retries allow";
    default:
      return `the Job failed${reason ? ` (${reason})` : ""}${message ? `: ${message}` : ""}`;
  }
}

/** A Job and its pods in the node's partition numbers, and how many partitions succeeded before it. */
export interface NodeView {
  job: ObservedJob;
  pods: ReadonlyMap<number, ObservedPod>;
  doneBefore: number;
}

/** Partitions of the node that succeeded in the attempts before this Job's (a partition retry's). */
export function doneBeforeOf(record: Pick<JobRecord, "partitions" | "ran">): number {
  return record.ran ? record.partitions - record.ran.length : 0;
}

/**
 * The Job as its node sees it. A partition retry's Job runs `record.ran` only, numbered 0…n-1
 * (Job index i is partition `ran[i]`): its indexes become partitions and its completions the
 * node's partitions, the others counted as done before. Any other Job is its node already.
 */
export function nodeView(job: ObservedJob, pods: ReadonlyMap<number, ObservedPod>, record: Pick<JobRecord, "partitions" | "ran">): NodeView {
  const ran = record.ran;
  if (!ran) return { job, pods, doneBefore: 0 };
  // An index outside `ran` cannot be (the Job has ran.length completions): dropped rather than thrown on.
  const toPartitions = (indexes: readonly number[]) => indexes.filter((i) => i < ran.length).map((i) => partitionOfIndex(ran, i));
  const mapped = new Map<number, ObservedPod>();
  for (const [i, pod] of pods) if (i < ran.length) mapped.set(partitionOfIndex(ran, i), { ...pod, index: partitionOfIndex(ran, i) });
  return {
    job: { ...job, completions: record.partitions, completedIndexes: toPartitions(job.completedIndexes), failedIndexes: toPartitions(job.failedIndexes) },
    pods: mapped,
    doneBefore: doneBeforeOf(record),
  };
}

/**
 * `pods`: the latest pod of each index (a retried index has had others). `timeoutSeconds`: the
 * node's, for the message when the Job's deadline passed. `doneBefore`: partitions that
 * succeeded before this Job (a partition retry), counted as done.
 */
export function progressOf(job: ObservedJob, pods: ReadonlyMap<number, ObservedPod>, timeoutSeconds?: number, doneBefore = 0): Progress {
  const counts: Counts = { total: job.completions, done: doneBefore + job.completedIndexes.length, failed: job.failedIndexes.length, running: job.active };
  if (!job.finished) return { counts, waiting: waitingOf(pods.values()), end: null };
  if (job.finished.outcome === "succeeded") return { counts: { ...counts, running: 0 }, waiting: null, end: { outcome: "succeeded", message: null } };
  const failed = job.failedIndexes.length > 0 ? job.failedIndexes : [...pods.values()].filter((p) => p.phase === "Failed").map((p) => p.index);
  const shown = failed.slice(0, 5).map((i) => failureOf(i, pods.get(i), job.completions));
  const more = failed.length > shown.length ? `; and ${plural(failed.length - shown.length, "more partition")}` : "";
  const which =
    failed.length > 0 && job.completions > 1 ? ` (${plural(failed.length, "partition")} of ${job.completions} failed: ${failed.slice(0, 20).join(", ")}${failed.length > 20 ? ", …" : ""})` : "";
  const message = `${jobFailure(job.finished.reason, job.finished.message, timeoutSeconds)}${which}${shown.length ? `: ${shown.join("; ")}${more}` : ""}`;
  return { counts: { ...counts, running: 0 }, waiting: null, end: { outcome: "failed", message: message.slice(0, 4000) } };
}

/**
 * A failed Job's failed indexes as the `failed` event names them (shared/partitions.ts):
 * `failedPartitions` when some indexes completed, and each failed one's exit code, reason and
 * last words as its latest pod told them (where the agent saw that pod).
 */
export function partitionFailuresOf(job: ObservedJob, pods: ReadonlyMap<number, ObservedPod>, doneBefore = 0): Promise<PartialFailure | undefined> {
  const ends: PartitionEnd[] = job.completedIndexes.map((index) => ({ index, exitCode: 0 }));
  for (const index of job.failedIndexes) {
    const pod = pods.get(index);
    const t = pod?.step;
    const reason = t?.reason && t.reason !== "Error" ? t.reason : (pod?.waiting?.reason ?? (t ? undefined : "failed"));
    ends.push({ index, exitCode: t && t.exitCode !== 0 ? t.exitCode : null, ...(reason ? { reason } : {}), stderr: async () => t?.message?.trim() ?? "" });
  }
  return partialFailure(ends, { total: job.completions, doneBefore, nested: job.completions > 1 });
}
