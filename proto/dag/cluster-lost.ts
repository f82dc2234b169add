/**
 * A DAG's `onClusterLost` with its defaults filled in. Kept out of the schema's output (no zod
 * `.default`) so DAG versions stored before the field existed read the same as new ones.
 */
import type { Dag } from "./schema";
import { durationMs } from "./windows";

export type ClusterLostPolicyName = "wait" | "retryElsewhere" | "fail";

export interface ClusterLostPolicy {
  policy: ClusterLostPolicyName;
  /** How long a cluster may stay silent (no heartbeat) before its attempts are lost, in ms. */
  graceMs: number;
  /** The grace as written (`"10m"`), for messages. */
  grace: string;
}

/** Absent: wait 10 minutes, then fail (a node never hangs `running` for ever on a dead cluster). */
export const DEFAULT_CLUSTER_LOST = { policy: "fail", grace: "10m" } as const;

export function clusterLostPolicy(dag: Pick<Dag, "onClusterLost">): ClusterLostPolicy {
  const policy = dag.onClusterLost?.policy ?? DEFAULT_CLUSTER_LOST.policy;
  const grace = dag.onClusterLost?.grace ?? DEFAULT_CLUSTER_LOST.grace;
  return { policy, grace, graceMs: durationMs(grace) };
}
