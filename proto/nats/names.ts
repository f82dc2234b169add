/**
 * Names of the NATS contract (ARCHITECTURE §4): the stream, subjects, consumers and inboxes of a
 * cluster. The control plane creates them, the agent uses them, the permissions grant them.
 */

/** Cluster ids go into NATS subjects, consumer names and inbox prefixes: keep them to one safe token. */
export const CLUSTER_ID_PATTERN = /^[A-Za-z0-9_-]+$/;

/** Longest accepted cluster id (consumer names and subjects stay short). */
export const CLUSTER_ID_MAX_LENGTH = 128;

/** Returns `clusterId` if it matches {@link CLUSTER_ID_PATTERN} and is at most 128 chars; throws otherwise. */
export function assertClusterId(clusterId: string): string {
  if (typeof clusterId !== "string" || clusterId.length > CLUSTER_ID_MAX_LENGTH || !CLUSTER_ID_PATTERN.test(clusterId)) {
    throw new Error(`invalid cluster id ${JSON.stringify(clusterId)}: expected ${CLUSTER_ID_PATTERN.source}, at most ${CLUSTER_ID_MAX_LENGTH} chars`);
  }
  return clusterId;
}

export const WORK_STREAM = "WORK";
export type WorkKind = "start" | "cancel";

/** `work.<clusterId>.<kind>`: where the control plane publishes work for a cluster. */
export const workSubject = (clusterId: string, kind: WorkKind): string => `work.${assertClusterId(clusterId)}.${kind}`;

/** `work.<clusterId>.>`: the filter of the cluster's consumer. */
export const workFilterSubject = (clusterId: string): string => `work.${assertClusterId(clusterId)}.>`;

/** `agent-<clusterId>`: the durable consumer the cluster's agent pulls from. */
export const agentConsumerName = (clusterId: string): string => `agent-${assertClusterId(clusterId)}`;

/** `_INBOX_<clusterId>`: the agent must connect with this `inboxPrefix` (its only subscribe right). */
export const agentInboxPrefix = (clusterId: string): string => `_INBOX_${assertClusterId(clusterId)}`;

/** `Nats-Msg-Id` of a work message: `<nodeRunId>.<attempt>.<kind>` (de-duplicated by the stream). */
export const workMsgId = (nodeRunId: string, attempt: number, kind: WorkKind): string => `${nodeRunId}.${attempt}.${kind}`;
