/**
 * What the agent keeps about a node attempt in its Job's annotation (`parallels.io/record`): the
 * MLflow runs it made. The cluster is the executor's state — after a restart, or on another
 * agent pod with no volume, the Jobs say everything needed to watch and end their attempts.
 */
import { z } from "zod";

export const JOB_RECORD_VERSION = 1;

export const JobRecordSchema = z.object({
  v: z.literal(JOB_RECORD_VERSION),
  experimentId: z.string(),
  parentRunId: z.string(),
  nodeRunId: z.string(),
  /** The node's partitions (on a partition retry, also those done before). */
  partitions: z.number().int().min(0),
  /**
   * A partition retry: the partitions this Job runs, Job index i → partition `ran[i]`; the
   * others succeeded in the attempts before. Absent: the Job runs every partition.
   */
  ran: z.array(z.number().int().min(0)).optional(),
  /** Partition → nested MLflow run (`""`: not run by this attempt; absent beyond the executor's limit of nested runs). */
  partitionRunIds: z.array(z.string()).optional(),
  timeoutSeconds: z.number().int().optional(),
});
export type JobRecord = z.infer<typeof JobRecordSchema>;

export function parseJobRecord(raw: string | undefined): JobRecord | null {
  if (!raw) return null;
  try {
    const parsed = JobRecordSchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
