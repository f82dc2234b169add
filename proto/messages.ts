/**
 * Work messages the control plane publishes on NATS JetStream and agents consume
 * (ARCHITECTURE §4): subject `work.<clusterId>.<kind>`, de-duplicated by `Nats-Msg-Id`.
 * Parsed with these schemas at every boundary, never cast.
 */
import { z } from "zod";
import { DagNodeSchema } from "./dag";
import { IndexListSchema } from "./indexes";

const Common = {
  runId: z.string().min(1),
  nodeRunId: z.string().min(1),
  nodeId: z.string().min(1),
  attempt: z.number().int().min(1),
};

export const WorkStartSchema = z.object({
  type: z.literal("start"),
  ...Common,
  dag: z.object({ name: z.string(), version: z.number().int() }),
  experiment: z.string(),
  /** The node as written in the DAG version the run uses. */
  node: DagNodeSchema,
  /** The run's DAG-level parameters (defaults merged with what the submit gave). */
  params: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])),
  /** Upstream node ids, for the agent to find its inputs' MLflow runs. */
  upstream: z.array(z.string()),
  mlflowParentRunId: z.string().nullable(),
  /**
   * Upstream nodes `reused` from the run this one resumes: node id → the MLflow run holding its
   * outputs (the earlier node run's). Inputs `{node}` of these read that run, not one under the parent.
   */
  upstreamRuns: z.record(z.string(), z.string()).optional(),
  /**
   * The run's `reused` nodes, sent while the run has no MLflow parent yet: the agent that makes
   * the parent gives each a FINISHED child run saying where its result comes from.
   */
  reused: z.array(z.object({ nodeId: z.string(), nodeRunId: z.string(), from: z.object({ runId: z.string(), nodeRunId: z.string(), mlflowRunId: z.string() }) })).optional(),
  /** The time windows of the node's windowed inputs (epoch ms, `[from, to)`), by input name, as the run fixed them. */
  windows: z.record(z.string(), z.object({ from: z.number(), to: z.number(), skipIfEmpty: z.boolean() })).optional(),
  /**
   * A retry of only the partitions that failed in the attempt before: the others succeeded, and
   * their outputs (on that attempt's MLflow run) and MLflow runs are kept.
   */
  retry: z
    .object({
      /** The attempt whose partitions failed, and its MLflow run (where the others' outputs are). */
      attempt: z.number().int().min(1),
      mlflowRunId: z.string().nullable(),
      /** The partitions to run again (indexes of the node's partitions), and how many it has. */
      partitions: IndexListSchema,
      total: z.number().int().min(1),
    })
    .optional(),
});
export type WorkStart = z.infer<typeof WorkStartSchema>;

export const WorkCancelSchema = z.object({ type: z.literal("cancel"), ...Common });
export type WorkCancel = z.infer<typeof WorkCancelSchema>;

export const WorkMessageSchema = z.discriminatedUnion("type", [WorkStartSchema, WorkCancelSchema]);
export type WorkMessage = z.infer<typeof WorkMessageSchema>;

export { workMsgId, workSubject } from "./nats";
