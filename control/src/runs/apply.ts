/**
 * Turns a scheduler decision into D1 statements, to run in one batch with whatever caused it.
 * Node changes and outbox rows are written through `json_each` over bound JSON parameters, so a
 * decision about 2,000 nodes is still a few statements (D1 allows 100 bound parameters).
 *
 * Concurrency: every decision first *claims* the run — its `state_token` changes from the token
 * read with the state the decision was made on to a new one — and every other write of the
 * decision applies only if that claim held. Two requests deciding on one run at once (two agents'
 * events, a cancel and an event) cannot both win with stale views: the loser's decision writes
 * nothing, and it decides again on a fresh read (`advanceRun`).
 */
import { sql, type SQL } from "drizzle-orm";
import type { ReusedFrom } from "../../../proto/api";
import type { Dag, DagNode } from "../../../proto/dag";
import { effectiveCache, nodeWindows, resolveNodeParams, upstreamOf, type RunWindows } from "../../../proto/dag";
import { parseIndexes } from "../../../proto/indexes";
import { workMsgId, workSubject, type WorkCancel, type WorkStart } from "../../../proto/messages";
import { isTerminalRun, TERMINAL_RUN_STATUSES, type NodeStatus, type RunStatus } from "../../../proto/status";
import { sqlList, type Db, type Writable } from "../db";
import type { SchedulerDecision } from "../scheduler";
import type { PartialFailure } from "../scheduler/resume";

export interface RunContext {
  runId: string;
  workspaceId: string;
  dag: Dag;
  dagVersion: number;
  params: Record<string, string | number | boolean>;
  mlflowRunId: string | null;
  /** The windows of the run's windowed inputs (null: none, or not fixed yet). */
  windows: RunWindows | null;
  runStatus: RunStatus;
  /** The run's `state_token` as read with this state. */
  stateToken: string;
  /** nodeId → its node run as stored (before this decision). */
  nodes: Map<string, NodeRunState>;
}

/** What a decision reads of a node run. */
export interface NodeRunState {
  id: string;
  attempt: number;
  clusterId: string | null;
  status: NodeStatus;
  /** The latest attempt's MLflow run, its failed partitions (`"3,7"`) and how many partitions it has. */
  mlflowRunId?: string | null;
  failedPartitions?: string | null;
  partitionsTotal?: number;
  /** A `reused` node (of a resumed run): the node run whose result it is. */
  reusedFrom?: ReusedFrom | null;
  /**
   * A resumed run's node whose first attempt runs only the partitions that failed in the run
   * resumed (`scheduler/resume.ts` planContinued). Known at the submit only, which dispatches it:
   * its upstream nodes are all reused, so it starts at once.
   */
  continues?: PartialFailure;
}

export interface NodeChange {
  id: string;
  status: NodeStatus;
  attempt: number;
  /** A new attempt starts from clean counters and sequence numbers. */
  reset: boolean;
  finishedAt: number | null;
  /** A new message for the node (an accepted partial success says which partitions failed). */
  message?: string;
}

export interface OutboxMessage {
  msgId: string;
  subject: string;
  payload: string;
}

/** What a decision changes, as plain data (tested without D1). */
export function changesOf(ctx: RunContext, decision: SchedulerDecision, now: number): { nodes: NodeChange[]; outbox: OutboxMessage[] } {
  const nodes: NodeChange[] = [];
  const outbox: OutboxMessage[] = [];
  const upstream = decision.dispatch.length > 0 ? upstreamOf(ctx.dag) : null;
  const specs = new Map(ctx.dag.nodes.map((n) => [n.id, n]));
  const reused = decision.dispatch.length > 0 ? reusedOf(ctx) : [];
  // Clusters already sent the reused list in this decision: one message per cluster carries it.
  const told = new Set<string | null>();
  for (const { nodeId, attempt, onlyFailed } of decision.dispatch) {
    const row = ctx.nodes.get(nodeId)!;
    nodes.push({ id: row.id, status: "dispatched", attempt, reset: true, finishedAt: null });
    const message: WorkStart = {
      type: "start",
      runId: ctx.runId,
      nodeRunId: row.id,
      nodeId,
      attempt,
      dag: { name: ctx.dag.name, version: ctx.dagVersion },
      experiment: ctx.dag.experiment ?? ctx.dag.name,
      // The DAG-wide `cache` is resolved here: the agent reads the node only.
      node: withCache(ctx.dag, resolveNodeParams(specs.get(nodeId)!, ctx.params)),
      params: ctx.params,
      upstream: upstream!.get(nodeId) ?? [],
      mlflowParentRunId: ctx.mlflowRunId,
      ...reusedFields(ctx, told.has(row.clusterId) ? [] : reused, upstream!.get(nodeId) ?? []),
      ...(nodeWindows(ctx.windows, nodeId) ? { windows: nodeWindows(ctx.windows, nodeId) } : {}),
      // The others succeeded: run the failed partitions only, keeping what the rest made.
      ...(onlyFailed && row.failedPartitions ? { retry: { attempt: row.attempt, mlflowRunId: row.mlflowRunId ?? null, partitions: row.failedPartitions, total: row.partitionsTotal ?? 1 } } : {}),
      // A resumed run's node: the same, continuing the run resumed's node run.
      ...(attempt === 1 && row.continues ? { retry: continuing(row.continues) } : {}),
    };
    told.add(row.clusterId);
    outbox.push({ msgId: workMsgId(row.id, attempt, "start"), subject: workSubject(row.clusterId!, "start"), payload: JSON.stringify(message) });
  }
  for (const nodeId of decision.cancel) {
    const row = ctx.nodes.get(nodeId)!;
    const message: WorkCancel = { type: "cancel", runId: ctx.runId, nodeRunId: row.id, nodeId, attempt: row.attempt };
    outbox.push({ msgId: workMsgId(row.id, row.attempt, "cancel"), subject: workSubject(row.clusterId!, "cancel"), payload: JSON.stringify(message) });
  }
  for (const nodeId of decision.skip) {
    const row = ctx.nodes.get(nodeId)!;
    nodes.push({ id: row.id, status: "skipped", attempt: row.attempt, reset: false, finishedAt: now });
  }
  for (const nodeId of decision.accept) {
    const row = ctx.nodes.get(nodeId)!;
    const failed = parseIndexes(row.failedPartitions);
    const total = row.partitionsTotal ?? 0;
    const ratio = ctx.dag.nodes.find((n) => n.id === nodeId)?.minSuccessRatio;
    const message = `succeeded with ${total - failed.length} of ${total} partitions (minSuccessRatio ${ratio}); failed: ${row.failedPartitions}`;
    nodes.push({ id: row.id, status: "succeeded", attempt: row.attempt, reset: false, finishedAt: now, message });
  }
  for (const nodeId of [...decision.cancelPending, ...decision.abandon]) {
    const row = ctx.nodes.get(nodeId)!;
    nodes.push({ id: row.id, status: "cancelled", attempt: row.attempt, reset: false, finishedAt: now });
  }
  return { nodes, outbox };
}

/** The `retry` of a first attempt that continues another run's node run. */
function continuing(c: PartialFailure): NonNullable<WorkStart["retry"]> {
  return { attempt: c.attempt, mlflowRunId: c.mlflowRunId, partitions: c.partitions, total: c.total, from: { runId: c.runId, nodeRunId: c.nodeRunId } };
}

/** The run's `reused` nodes (a resumed run's), as a start message names them. */
function reusedOf(ctx: RunContext): NonNullable<WorkStart["reused"]> {
  const out: NonNullable<WorkStart["reused"]> = [];
  for (const [nodeId, row] of ctx.nodes) if (row.status === "reused" && row.reusedFrom) out.push({ nodeId, nodeRunId: row.id, from: row.reusedFrom });
  return out;
}

/**
 * What a start message says of reused nodes: the MLflow runs of its reused upstream nodes (where
 * its `{node}` inputs are), and — while the run has no MLflow parent yet, so its agent may be the
 * one to make it — every reused node, for the agent to record under the parent. The list goes in
 * the first message of a decision to each cluster only (`reused` empty otherwise): a wide resumed
 * run's first decision would otherwise repeat it in every message; the agent records the list
 * whichever of the run's messages brings it (`parentRunFor`).
 */
function reusedFields(ctx: RunContext, reused: NonNullable<WorkStart["reused"]>, upstream: readonly string[]): Pick<WorkStart, "upstreamRuns" | "reused"> {
  const upstreamRuns: Record<string, string> = {};
  for (const u of upstream) {
    const from = ctx.nodes.get(u)?.reusedFrom;
    if (ctx.nodes.get(u)?.status === "reused" && from) upstreamRuns[u] = from.mlflowRunId;
  }
  return { ...(Object.keys(upstreamRuns).length > 0 ? { upstreamRuns } : {}), ...(reused.length > 0 && !ctx.mlflowRunId ? { reused } : {}) };
}

/** A decision's statements: `claim` first, then `writes`, which apply only if the claim held. */
export interface GuardedWrites {
  /** Changes exactly one row when the run was not changed since it was read. */
  claim: Writable;
  writes: Writable[];
}

/** New state token: random, so no two decisions can ever claim with the same one. */
export const newStateToken = () => crypto.randomUUID();

/** The statements that apply a decision. Every one is safe to run twice. */
export function statementsFor(db: Db, ctx: RunContext, decision: SchedulerDecision, now: number, nextToken = newStateToken()): GuardedWrites {
  const { nodes, outbox } = changesOf(ctx, decision, now);
  const claimed = sql`(SELECT state_token FROM dag_runs WHERE id = ${ctx.runId}) = ${nextToken}`;
  const claim = db.run(sql`UPDATE dag_runs SET state_token = ${nextToken} WHERE id = ${ctx.runId} AND state_token = ${ctx.stateToken}`);
  const out: Writable[] = [];
  for (const part of chunked(nodes)) {
    out.push(
      db.run(sql`
        UPDATE node_runs SET
          status = json_extract(j.value, '$.status'),
          attempt = json_extract(j.value, '$.attempt'),
          last_seq = CASE WHEN json_extract(j.value, '$.reset') THEN 0 ELSE last_seq END,
          partitions_total = CASE WHEN json_extract(j.value, '$.reset') THEN 0 ELSE partitions_total END,
          partitions_done = CASE WHEN json_extract(j.value, '$.reset') THEN 0 ELSE partitions_done END,
          partitions_failed = CASE WHEN json_extract(j.value, '$.reset') THEN 0 ELSE partitions_failed END,
          partitions_running = CASE WHEN json_extract(j.value, '$.reset') THEN 0 ELSE partitions_running END,
          message = CASE WHEN json_extract(j.value, '$.reset') THEN NULL ELSE COALESCE(json_extract(j.value, '$.message'), message) END,
          final_failure = CASE WHEN json_extract(j.value, '$.reset') THEN 0 ELSE final_failure END,
          image_ref = CASE WHEN json_extract(j.value, '$.reset') THEN NULL ELSE image_ref END,
          -- A new attempt makes its own key (the branch may have moved): the old one must not stand for its result.
          cache_key = CASE WHEN json_extract(j.value, '$.reset') THEN NULL ELSE cache_key END,
          building_since = CASE WHEN json_extract(j.value, '$.reset') THEN NULL ELSE building_since END,
          started_at = CASE WHEN json_extract(j.value, '$.reset') THEN NULL ELSE started_at END,
          finished_at = json_extract(j.value, '$.finishedAt'),
          updated_at = ${now}
        FROM json_each(${part}) AS j
        WHERE node_runs.id = json_extract(j.value, '$.id') AND node_runs.run_id = ${ctx.runId} AND ${claimed}`),
    );
  }
  out.push(...outboxInserts(db, outbox, now, claimed));
  if (decision.runStatus !== ctx.runStatus) {
    const terminal = isTerminalRun(decision.runStatus);
    out.push(
      db.run(sql`
        UPDATE dag_runs SET status = ${decision.runStatus},
          started_at = COALESCE(started_at, ${decision.runStatus === "queued" ? null : now}),
          finished_at = ${terminal ? now : null}
        WHERE id = ${ctx.runId} AND state_token = ${nextToken} AND status NOT IN ${sqlList(TERMINAL_RUN_STATUSES)}`),
    );
  }
  if (nodes.length > 0 || outbox.length > 0 || decision.runStatus !== ctx.runStatus) {
    const data = JSON.stringify({
      from: ctx.runStatus,
      to: decision.runStatus,
      dispatch: decision.dispatch,
      cancel: decision.cancel,
      skip: decision.skip,
      cancelPending: decision.cancelPending,
      abandon: decision.abandon,
      accept: decision.accept,
    });
    out.push(db.run(sql`INSERT INTO events (workspace_id, run_id, type, data, at) SELECT ${ctx.workspaceId}, ${ctx.runId}, 'run.advanced', ${data}, ${now} WHERE ${claimed}`));
  }
  return { claim, writes: out };
}

/** Whether a batch's claim statement changed its row (D1 reports changed rows in `meta`). */
export const claimHeld = (result: D1Result | undefined): boolean => (result?.meta?.changes ?? 0) === 1;

/**
 * JSON arrays of at most ~256 KB each: one bound value stays far below D1's limits on a value
 * and a statement, whatever the DAG's width or its params' size.
 */
export function chunked(items: unknown[], maxBytes = 256 * 1024): string[] {
  const out: string[] = [];
  let part: string[] = [];
  let size = 2;
  for (const item of items) {
    const text = JSON.stringify(item);
    if (part.length > 0 && size + text.length + 1 > maxBytes) {
      out.push(`[${part.join(",")}]`);
      part = [];
      size = 2;
    }
    part.push(text);
    size += text.length + 1;
  }
  if (part.length > 0) out.push(`[${part.join(",")}]`);
  return out;
}

/** Outbox rows; a message already written (same NATS msg id) is not written twice. */
export function outboxInserts(db: Db, messages: OutboxMessage[], now: number, guard: SQL = sql`true`): Writable[] {
  return chunked(messages).map((part) =>
    db.run(sql`
      INSERT INTO outbox (msg_id, subject, payload, created_at, attempts, next_attempt_at)
      SELECT json_extract(value, '$.msgId'), json_extract(value, '$.subject'), json_extract(value, '$.payload'), ${now}, 0, ${now}
      FROM json_each(${part}) WHERE ${guard}
      ON CONFLICT(msg_id) DO NOTHING`),
  );
}

/** The node with the `cache` that applies to it (its own, else the DAG's), for the agent. */
function withCache(dag: Dag, node: DagNode): DagNode {
  const cache = effectiveCache(dag, node);
  return cache === undefined || cache === node.cache ? node : { ...node, cache };
}
