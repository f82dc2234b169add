/**
 * Turns a scheduler decision into D1 statements, to run in one batch with whatever caused it.
 * Node changes and outbox rows are written through `json_each` over one bound JSON parameter,
 * so a decision about 2,000 nodes is still one statement each (D1 allows 100 bound parameters).
 */
import { sql } from "drizzle-orm";
import type { Dag } from "../../../proto/dag";
import { upstreamOf } from "../../../proto/dag";
import { workMsgId, workSubject, type WorkCancel, type WorkStart } from "../../../proto/messages";
import type { Db, Writable } from "../db";
import type { NodeStatus, RunStatus, SchedulerDecision } from "../scheduler";

export const TERMINAL_RUN: readonly RunStatus[] = ["succeeded", "failed", "cancelled"];

export interface RunContext {
  runId: string;
  workspaceId: string;
  dag: Dag;
  dagVersion: number;
  params: Record<string, string | number | boolean>;
  mlflowRunId: string | null;
  runStatus: RunStatus;
  /** nodeId → its node run as stored (before this decision). */
  nodes: Map<string, { id: string; attempt: number; clusterId: string | null; status: NodeStatus }>;
}

export interface NodeChange {
  id: string;
  status: NodeStatus;
  attempt: number;
  /** A new attempt starts from clean counters and sequence numbers. */
  reset: boolean;
  finishedAt: number | null;
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
  for (const { nodeId, attempt } of decision.dispatch) {
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
      node: specs.get(nodeId)!,
      params: ctx.params,
      upstream: upstream!.get(nodeId) ?? [],
      mlflowParentRunId: ctx.mlflowRunId,
    };
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
  for (const nodeId of decision.cancelPending) {
    const row = ctx.nodes.get(nodeId)!;
    nodes.push({ id: row.id, status: "cancelled", attempt: row.attempt, reset: false, finishedAt: now });
  }
  return { nodes, outbox };
}

/** The statements that apply a decision. Every one is safe to run twice. */
export function statementsFor(db: Db, ctx: RunContext, decision: SchedulerDecision, now: number): Writable[] {
  const { nodes, outbox } = changesOf(ctx, decision, now);
  const out: Writable[] = [];
  if (nodes.length > 0) {
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
          message = CASE WHEN json_extract(j.value, '$.reset') THEN NULL ELSE message END,
          started_at = CASE WHEN json_extract(j.value, '$.reset') THEN NULL ELSE started_at END,
          finished_at = json_extract(j.value, '$.finishedAt'),
          updated_at = ${now}
        FROM json_each(${JSON.stringify(nodes)}) AS j
        WHERE node_runs.id = json_extract(j.value, '$.id') AND node_runs.run_id = ${ctx.runId}`),
    );
  }
  if (outbox.length > 0) out.push(outboxInsert(db, outbox, now));
  if (decision.runStatus !== ctx.runStatus) {
    const terminal = TERMINAL_RUN.includes(decision.runStatus);
    out.push(
      db.run(sql`
        UPDATE dag_runs SET status = ${decision.runStatus},
          started_at = COALESCE(started_at, ${decision.runStatus === "queued" ? null : now}),
          finished_at = ${terminal ? now : null}
        WHERE id = ${ctx.runId} AND status NOT IN ('succeeded', 'failed', 'cancelled')`),
    );
  }
  if (nodes.length > 0 || outbox.length > 0 || decision.runStatus !== ctx.runStatus) {
    out.push(
      db.run(sql`INSERT INTO events (workspace_id, run_id, type, data, at) VALUES (${ctx.workspaceId}, ${ctx.runId}, 'run.advanced', ${JSON.stringify({
        from: ctx.runStatus,
        to: decision.runStatus,
        dispatch: decision.dispatch,
        cancel: decision.cancel,
        skip: decision.skip,
        cancelPending: decision.cancelPending,
      })}, ${now})`),
    );
  }
  return out;
}

/** Outbox rows; a message already written (same NATS msg id) is not written twice. */
export function outboxInsert(db: Db, messages: OutboxMessage[], now: number): Writable {
  return db.run(sql`
    INSERT INTO outbox (msg_id, subject, payload, created_at, attempts, next_attempt_at)
    SELECT json_extract(value, '$.msgId'), json_extract(value, '$.subject'), json_extract(value, '$.payload'), ${now}, 0, ${now}
    FROM json_each(${JSON.stringify(messages)}) WHERE true
    ON CONFLICT(msg_id) DO NOTHING`);
}
