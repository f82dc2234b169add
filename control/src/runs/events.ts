/**
 * Applying an agent's event batch. Idempotent by `(nodeRunId, attempt, seq)`: an event for
 * another attempt, or with a `seq` not above the last one applied, changes nothing, so a
 * replayed or reordered batch is harmless. Events only move a node forward; a finished attempt
 * stays finished. Nodes that changed status make their runs advance (dependants dispatched,
 * retries, run finished) in the same write: one read batch and one write batch per request,
 * whatever the number of events and runs — this is on the path from a step's end to its
 * dependant's start.
 */
import { and, eq, sql } from "drizzle-orm";
import { dagRuns, dagVersions, nodeRuns } from "../../../db/schema";
import type { AgentEvent, EventBatchResult } from "../../../proto/agent";
import type { RunView } from "../../../proto/api";
import { isAttemptOutcome, isTerminalNode, isTerminalRun, type NodeStatus } from "../../../proto/status";
import { writeBatch, type Db, type Writable } from "../db";
import { ApiError } from "../errors";
import { advanceRun, planAdvance } from "./advance";
import { claimHeld } from "./apply";

const STATUS_OF: Partial<Record<AgentEvent["type"], NodeStatus>> = {
  building: "building",
  built: "building",
  running: "running",
  succeeded: "succeeded",
  failed: "failed",
  cancelled: "cancelled",
};

type Row = typeof nodeRuns.$inferSelect;

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
  const ids = JSON.stringify([...new Set(events.map((e) => e.nodeRunId))]);
  const ofTheseRuns = sql`IN (SELECT run_id FROM node_runs WHERE id IN (SELECT value FROM json_each(${ids})))`;
  const [runs, nodes] = await db.batch([
    db
      .select({ run: dagRuns, spec: dagVersions.spec })
      .from(dagRuns)
      .innerJoin(dagVersions, and(eq(dagVersions.dagId, dagRuns.dagId), eq(dagVersions.version, dagRuns.dagVersion)))
      .where(sql`${dagRuns.id} ${ofTheseRuns}`),
    db.select().from(nodeRuns).where(sql`${nodeRuns.runId} ${ofTheseRuns}`).orderBy(nodeRuns.id),
  ]);
  const byId = new Map(nodes.map((n) => [n.id, n]));
  // The same answer for "unknown" and "another cluster's": an agent learns nothing about others.
  const foreign = events.flatMap((e, i) => (byId.get(e.nodeRunId)?.clusterId === clusterId ? [] : [{ path: `events[${i}].nodeRunId`, message: `node run "${e.nodeRunId}" is not work of this cluster` }]));
  if (foreign.length > 0) throw new ApiError("forbidden", "the batch reports on work this cluster was not given; nothing was applied", foreign);

  const applied: AgentEvent[] = [];
  const updates = new Map<string, NodeUpdate>();
  const sorted = [...events].sort((a, b) => a.attempt - b.attempt || a.seq - b.seq);
  for (const e of sorted) {
    const row = byId.get(e.nodeRunId)!;
    const u = updates.get(row.id) ?? startUpdate(row);
    if (e.attempt !== row.attempt || e.seq <= u.lastSeq || isTerminalNode(u.status)) continue;
    applied.push(e);
    u.lastSeq = e.seq;
    const next = STATUS_OF[e.type];
    if (next) u.status = next;
    if (e.counts) Object.assign(u, { total: e.counts.total, done: e.counts.done, failed: e.counts.failed, running: e.counts.running });
    if (e.mlflowRunId) u.mlflowRunId = e.mlflowRunId;
    if (e.message) u.message = e.message;
    if (next === "running" && u.startedAt === null) u.startedAt = e.at;
    if (next && isTerminalNode(next)) u.finishedAt = e.at;
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
    const runOf = new Map(runs.map((r) => [r.run.id, r.run]));
    writes.push(
      db.run(sql`
        INSERT INTO events (workspace_id, run_id, node_id, type, data, at)
        SELECT json_extract(value, '$.workspaceId'), json_extract(value, '$.runId'), json_extract(value, '$.nodeRunId'), 'agent.event', json_extract(value, '$.data'), ${now}
        FROM json_each(${JSON.stringify(
          applied.map((e) => {
            const runId = byId.get(e.nodeRunId)!.runId;
            return { workspaceId: runOf.get(runId)!.workspaceId, runId, nodeRunId: e.nodeRunId, data: JSON.stringify(e) };
          }),
        )})`),
    );
  }
  // The DAG run's MLflow parent run, as the first agent to start one of its steps made it: kept
  // once known (every agent finds the same parent by tag, so later reports only repeat it).
  const parents = new Map<string, string>();
  for (const e of sorted) {
    const runId = byId.get(e.nodeRunId)!.runId;
    if (e.mlflowParentRunId && !parents.has(runId) && runs.some((r) => r.run.id === runId && r.run.mlflowRunId === null)) parents.set(runId, e.mlflowParentRunId);
  }
  if (parents.size > 0) {
    writes.push(
      db.run(sql`
        UPDATE dag_runs SET mlflow_run_id = json_extract(j.value, '$[1]')
        FROM json_each(${JSON.stringify([...parents])}) AS j
        WHERE dag_runs.id = json_extract(j.value, '$[0]') AND dag_runs.mlflow_run_id IS NULL`),
    );
  }
  // Runs whose nodes changed status move on (dependants, retries, the run's end), decided on the
  // state these events leave and written in the same batch, each behind its run's claim.
  const planned: { runId: string; workspaceId: string; claimAt: number; view: RunView }[] = [];
  for (const { run, spec } of runs) {
    const runNodes = nodes.filter((n) => n.runId === run.id);
    if (!runNodes.some((n) => updates.has(n.id) && updates.get(n.id)!.status !== n.status)) continue;
    const after = runNodes.map((n) => (updates.has(n.id) ? withUpdate(n, updates.get(n.id)!) : n));
    const plan = planAdvance(db, run, spec, after, {}, now);
    if (!plan.guarded) continue;
    planned.push({ runId: run.id, workspaceId: run.workspaceId, claimAt: writes.length, view: plan.view });
    writes.push(plan.guarded.claim, ...plan.guarded.writes);
  }
  const results = await writeBatch(db, writes);
  const endedRuns: EventBatchResult["endedRuns"] = [];
  for (const p of planned) {
    // Lost to a concurrent decision on the same run: our events are in; decide again on a fresh read.
    const view = claimHeld(results[p.claimAt]) ? p.view : await advanceRun(db, p.workspaceId, p.runId, {}, now);
    if (view && isTerminalRun(view.status)) endedRuns.push({ runId: p.runId, status: view.status });
  }
  // A step that ends after its run did (a forced cancel, a fail-fast cancel) is the agent's cue
  // that the run is over too: it closes the run's MLflow parent if it has not (idempotent there).
  const endedBefore = new Set(sorted.filter((e) => isAttemptOutcome(e.type)).map((e) => byId.get(e.nodeRunId)!.runId));
  for (const { run } of runs) {
    const status = run.status;
    if (endedBefore.has(run.id) && isTerminalRun(status) && !planned.some((p) => p.runId === run.id)) endedRuns.push({ runId: run.id, status });
  }
  return { applied: applied.length, ignored: events.length - applied.length, endedRuns };
}

function withUpdate(row: Row, u: NodeUpdate): Row {
  return {
    ...row,
    status: u.status,
    lastSeq: u.lastSeq,
    mlflowRunId: u.mlflowRunId ?? row.mlflowRunId,
    message: u.message ?? row.message,
    startedAt: row.startedAt ?? u.startedAt,
    finishedAt: u.finishedAt ?? row.finishedAt,
  };
}

function startUpdate(row: Row): NodeUpdate {
  return {
    id: row.id,
    fromSeq: row.lastSeq,
    attempt: row.attempt,
    lastSeq: row.lastSeq,
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
