/**
 * Work messages the control plane publishes on NATS JetStream and agents consume
 * (ARCHITECTURE §4): subject `work.<clusterId>.<kind>`, de-duplicated by `Nats-Msg-Id`.
 * Parsed with these schemas at every boundary, never cast.
 */
import { z } from "zod";
import { DagNodeSchema } from "./dag";

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
});
export type WorkStart = z.infer<typeof WorkStartSchema>;

export const WorkCancelSchema = z.object({ type: z.literal("cancel"), ...Common });
export type WorkCancel = z.infer<typeof WorkCancelSchema>;

export const WorkMessageSchema = z.discriminatedUnion("type", [WorkStartSchema, WorkCancelSchema]);
export type WorkMessage = z.infer<typeof WorkMessageSchema>;

export { workMsgId, workSubject } from "./nats";
