/**
 * Applying an agent's event batch. Idempotent by `(nodeRunId, attempt, seq)`: an event for
 * another attempt, or with a `seq` not above the last one applied, changes nothing, so a
 * replayed or reordered batch is harmless. Events only move a node forward; a finished attempt
 * stays finished. Nodes that changed status make their runs advance (dependants dispatched,
 * retries, run finished).
 */
import { sql } from "drizzle-orm";
import type { AgentEvent, EventBatchResult } from "../../../proto/agent";
import type { NodeStatus } from "../scheduler";
import { writeBatch, type Db, type Writable } from "../db";
import { ApiError } from "../errors";
import { advanceRun } from "./advance";

const FINAL: readonly NodeStatus[] = ["succeeded", "failed", "cancelled", "skipped"];
const STATUS_OF: Partial<Record<AgentEvent["type"], NodeStatus>> = {
  building: "building",
  built: "building",
  running: "running",
  succeeded: "succeeded",
  failed: "failed",
  cancelled: "cancelled",
};

interface Row {
  id: string;
  run_id: string;
  workspace_id: string;
  cluster_id: string | null;
  status: NodeStatus;
  attempt: number;
  last_seq: number;
}

interface NodeUpdate {
  id: string;
  fromSeq: number;
  attempt: number;
  lastSeq: number;
  status: NodeStatus;
  total: number | null;
  done: number | null;
  failed: number | null;
  running: number | null;
  mlflowRunId: string | null;
  message: string | null;
  startedAt: number | null;
  finishedAt: number | null;
}

export async function applyAgentEvents(db: Db, clusterId: string, events: AgentEvent[], now = Date.now()): Promise<EventBatchResult> {
  const ids = [...new Set(events.map((e) => e.nodeRunId))];
  const rows = await db.all<Row>(sql`
    SELECT n.id, n.run_id, r.workspace_id, n.cluster_id, n.status, n.attempt, n.last_seq
    FROM node_runs n JOIN dag_runs r ON r.id = n.run_id
    WHERE n.id IN (SELECT value FROM json_each(${JSON.stringify(ids)}))`);
  const byId = new Map(rows.map((r) => [r.id, r]));
  // The same answer for "unknown" and "another cluster's": an agent learns nothing about others.
  const foreign = events.flatMap((e, i) => (byId.get(e.nodeRunId)?.cluster_id === clusterId ? [] : [{ path: `events[${i}].nodeRunId`, message: `node run "${e.nodeRunId}" is not work of this cluster` }]));
  if (foreign.length > 0) throw new ApiError("forbidden", "the batch reports on work this cluster was not given; nothing was applied", foreign);

  const applied: AgentEvent[] = [];
  const updates = new Map<string, NodeUpdate>();
  const sorted = [...events].sort((a, b) => a.attempt - b.attempt || a.seq - b.seq);
  for (const e of sorted) {
    const row = byId.get(e.nodeRunId)!;
    const u = updates.get(row.id) ?? startUpdate(row);
    if (e.attempt !== row.attempt || e.seq <= u.lastSeq || FINAL.includes(u.status)) continue;
    applied.push(e);
    u.lastSeq = e.seq;
    const next = STATUS_OF[e.type];
    if (next) u.status = next;
    if (e.counts) Object.assign(u, { total: e.counts.total, done: e.counts.done, failed: e.counts.failed, running: e.counts.running });
    if (e.mlflowRunId) u.mlflowRunId = e.mlflowRunId;
    if (e.message) u.message = e.message;
    if (next === "running" && u.startedAt === null) u.startedAt = e.at;
    if (next && FINAL.includes(next)) u.finishedAt = e.at;
    updates.set(row.id, u);
  }
  const changed = [...updates.values()];
  const writes: Writable[] = [];
  if (changed.length > 0) {
    // Guarded by the sequence number read above: a concurrent batch that got there first wins.
    writes.push(
      db.run(sql`
        UPDATE node_runs SET
          status = json_extract(j.value, '$.status'),
          last_seq = json_extract(j.value, '$.lastSeq'),
          partitions_total = COALESCE(json_extract(j.value, '$.total'), partitions_total),
          partitions_done = COALESCE(json_extract(j.value, '$.done'), partitions_done),
          partitions_failed = COALESCE(json_extract(j.value, '$.failed'), partitions_failed),
          partitions_running = COALESCE(json_extract(j.value, '$.running'), partitions_running),
          mlflow_run_id = COALESCE(json_extract(j.value, '$.mlflowRunId'), mlflow_run_id),
          message = COALESCE(json_extract(j.value, '$.message'), message),
          started_at = COALESCE(started_at, json_extract(j.value, '$.startedAt')),
          finished_at = COALESCE(json_extract(j.value, '$.finishedAt'), finished_at),
          updated_at = ${now}
        FROM json_each(${JSON.stringify(changed)}) AS j
        WHERE node_runs.id = json_extract(j.value, '$.id')
          AND node_runs.attempt = json_extract(j.value, '$.attempt')
          AND node_runs.last_seq = json_extract(j.value, '$.fromSeq')`),
    );
    writes.push(
      db.run(sql`
        INSERT INTO events (workspace_id, run_id, node_id, type, data, at)
        SELECT json_extract(value, '$.workspaceId'), json_extract(value, '$.runId'), json_extract(value, '$.nodeRunId'), 'agent.event', json_extract(value, '$.data'), ${now}
        FROM json_each(${JSON.stringify(
          applied.map((e) => ({ workspaceId: byId.get(e.nodeRunId)!.workspace_id, runId: byId.get(e.nodeRunId)!.run_id, nodeRunId: e.nodeRunId, data: JSON.stringify(e) })),
        )})`),
    );
  }
  await writeBatch(db, writes);
  // Runs whose nodes changed status move on: dependants, retries, the run's own end.
  const runs = new Map<string, string>();
  for (const u of changed) {
    const row = byId.get(u.id)!;
    if (u.status !== row.status) runs.set(row.run_id, row.workspace_id);
  }
  for (const [runId, workspaceId] of runs) await advanceRun(db, workspaceId, runId, {}, now);
  return { applied: applied.length, ignored: events.length - applied.length };
}

function startUpdate(row: Row): NodeUpdate {
  return {
    id: row.id,
    fromSeq: row.last_seq,
    attempt: row.attempt,
    lastSeq: row.last_seq,
    status: row.status,
    total: null,
    done: null,
    failed: null,
    running: null,
    mlflowRunId: null,
    message: null,
    startedAt: null,
    finishedAt: null,
  };
}
