/**
 * What the programs of a work pod (`parallels-agent pod fetch|upload`) need to know about their
 * attempt, given by the agent in one annotation of the Job's pod template, which both programs
 * get as the environment variable {@link POD_ATTEMPT_ENV} (downward API) — the same for every index; what differs per index comes from
 * `JOB_COMPLETION_INDEX` and the manifest. Parsed with zod where it is read.
 */
import { z } from "zod";
import { InputSourceSchema } from "../shared/inputs";

export const POD_ATTEMPT_VERSION = 1;

export const PodAttemptSchema = z.object({
  v: z.literal(POD_ATTEMPT_VERSION),
  trackingUri: z.string(),
  experimentId: z.string(),
  /** The node attempt's MLflow run: outputs go to its artifacts, as on the local executor. */
  nodeRunId: z.string(),
  /** Number of the node's partitions (the manifest's count; the Job's completions unless `ran`). */
  partitions: z.number().int().min(1),
  /**
   * A partition retry runs only these of the node's partitions: the Job's index i runs partition
   * `ran[i]` ({@link partitionOfIndex}). Absent: index i is partition i.
   */
  ran: z.array(z.number().int().min(0)).optional(),
  /** The manifest (`parallels/manifest.json` of the node run) splits the partitioned input. */
  partitionInput: z.string().optional(),
  /** Nested MLflow runs per partition, listed in `parallels/partition-runs.json` of the node run (index → run id). */
  partitionRuns: z.boolean(),
  inputs: z.record(z.string(), InputSourceSchema),
  /** The project's code: cloned at its commit, or already in the image at `dir`. */
  project: z.union([z.object({ git: z.string(), commit: z.string(), subdirectory: z.string().optional() }), z.object({ dir: z.string() })]),
  /** Seconds between log uploads while the step runs. */
  logsEverySeconds: z.number().int().min(1).default(30),
});
export type PodAttempt = z.infer<typeof PodAttemptSchema>;

/**
 * The node's partition a Job index runs: `ran[index]` on a partition retry, else the index itself.
 * The one place the Job's numbers become the node's (the pod programs, the agent's view of a Job).
 */
export function partitionOfIndex(ran: readonly number[] | undefined, index: number): number {
  if (!ran) return index;
  const p = ran[index];
  if (p === undefined) throw new RangeError(`Job index ${index} is outside the ${ran.length} partitions this Job runs (${ran.join(",")})`);
  return p;
}

/**
 * Artifact paths of the node run the agent writes for its pods. `partitionRuns`: a JSON array,
 * partition → its nested run id (`""` for a partition this attempt does not run).
 */
export const NODE_ARTIFACTS = Object.freeze({ manifest: "parallels/manifest.json", partitionRuns: "parallels/partition-runs.json" } as const);
