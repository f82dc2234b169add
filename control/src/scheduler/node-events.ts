/**
 * @module
 * How an agent's event moves a node run: pure, beside `decide`, which says what happens next once
 * nodes have moved. `runs/events.ts` reads the rows, calls these and writes what they return.
 *
 * Rules, for one node run:
 * 1. An event of another attempt than the node run's current one changes nothing (a late report
 *    of an attempt that was retried since, or of one not dispatched yet).
 * 2. An attempt's events apply in `seq` order; one whose `seq` is not above the last applied
 *    changes nothing — so a replayed batch, or an older event arriving late, is harmless.
 * 3. Once the attempt is over (`isTerminalNode`: succeeded, failed, cancelled, skipped) no event
 *    moves it: a finished attempt stays finished, and a node a forced cancel marked `cancelled`
 *    ignores its agent's late report.
 * 4. Otherwise the event applies: its type sets the status (`accepted` and `progress` leave it);
 *    partition counters are absolute, so the newest replaces the old; an MLflow run id or a
 *    message replaces the one before; `startedAt` is the first `running`, `finishedAt` the end;
 *    a `failed` event that says `final` makes the failure final (no further attempt), and one that
 *    names `failedPartitions` (the others succeeded) makes the next attempt run only those; an image
 *    reference replaces the one before, and the first `building` says since when the node waits
 *    for its image. A `succeeded` event that names `cachedFrom` (the agent's cache lookup hit:
 *    no step ran) makes the node `cached` from that node run instead.
 * The agent numbers an attempt's events in the order they happen, so `seq` order is their order:
 * a status is not compared with the one before, only rule 3 holds a node where it is.
 */
import type { AgentEvent, AgentEventType, PartitionFailure } from "../../../proto/agent";
import { isTerminalNode, type NodeStatus } from "../../../proto/status";

/** What agent events set on a node run (its row's columns). */
export interface NodeProgress {
  status: NodeStatus;
  /** The node run's current attempt: events of others are ignored. */
  attempt: number;
  /** The highest `seq` applied for this attempt (0: none yet). */
  lastSeq: number;
  partitions: { total: number; done: number; failed: number; running: number };
  mlflowRunId: string | null;
  message: string | null;
  /** The attempt failed and no retry can help (the event said `final`). */
  final: boolean;
  /** The attempt failed in these partitions only (`"3,7"`), the others succeeded; null otherwise. */
  failedPartitions: string | null;
  /** Why those failed (the first 50). */
  partitionFailures: PartitionFailure[] | null;
  /** The image the attempt runs in or waits for (the latest event naming one). */
  imageRef: string | null;
  /** A `cached` node: the succeeded node run whose result it is. */
  cachedFrom: { runId: string; nodeRunId: string; mlflowRunId: string } | null;
  /** When the attempt started waiting for an image (its first `building` event). */
  buildingSince: number | null;
  startedAt: number | null;
  finishedAt: number | null;
}

/** The part of an agent event that moves its node run. */
export type NodeEvent = Pick<AgentEvent, "attempt" | "seq" | "type" | "at" | "counts" | "mlflowRunId" | "message" | "final" | "failedPartitions" | "partitionFailures" | "imageRef" | "cachedFrom">;

/** The status an event puts its node in; null: it leaves the status as it is. */
const STATUS_OF = {
  accepted: null,
  building: "building",
  built: "building",
  running: "running",
  progress: null,
  succeeded: "succeeded",
  failed: "failed",
  cancelled: "cancelled",
} as const satisfies Record<AgentEventType, NodeStatus | null>;

/** An attempt's events in the order they happened (the agent's `seq`); attempts apart. */
export const inSeqOrder = (a: Pick<NodeEvent, "attempt" | "seq">, b: Pick<NodeEvent, "attempt" | "seq">): number => a.attempt - b.attempt || a.seq - b.seq;

/** The node after `event`; `node` itself (the same object) when the event changes nothing. */
export function applyEvent(node: NodeProgress, event: NodeEvent): NodeProgress {
  if (event.attempt !== node.attempt || event.seq <= node.lastSeq || isTerminalNode(node.status)) return node;
  const cachedFrom = event.type === "succeeded" && event.cachedFrom ? event.cachedFrom : null;
  const next = cachedFrom ? "cached" : STATUS_OF[event.type];
  return {
    status: next ?? node.status,
    attempt: node.attempt,
    lastSeq: event.seq,
    partitions: event.counts ? { ...event.counts } : node.partitions,
    mlflowRunId: event.mlflowRunId || node.mlflowRunId,
    message: event.message || node.message,
    final: node.final || (next === "failed" && event.final === true),
    failedPartitions: next === "failed" ? event.failedPartitions || null : node.failedPartitions,
    partitionFailures: next === "failed" ? (event.partitionFailures ?? null) : node.partitionFailures,
    imageRef: event.imageRef || node.imageRef,
    cachedFrom: cachedFrom ?? node.cachedFrom,
    buildingSince: event.type === "building" && node.buildingSince === null ? event.at : node.buildingSince,
    startedAt: next === "running" && node.startedAt === null ? event.at : node.startedAt,
    finishedAt: next !== null && isTerminalNode(next) ? event.at : node.finishedAt,
  };
}

/** A batch of one node run's events, applied in `seq` order whatever order they came in; `applied`: those that changed it. */
export function applyEvents<E extends NodeEvent>(node: NodeProgress, events: readonly E[]): { node: NodeProgress; applied: E[] } {
  const applied: E[] = [];
  let current = node;
  for (const e of [...events].sort(inSeqOrder)) {
    const after = applyEvent(current, e);
    if (after !== current) applied.push(e);
    current = after;
  }
  return { node: current, applied };
}
