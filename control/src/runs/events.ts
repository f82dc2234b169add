/**
 * Applying an agent's event batch: read the node runs and their runs, move each node run by its
 * events (`applyEvents`, pure, in scheduler/node-events.ts: idempotent by `(nodeRunId, attempt,
 * seq)`, so a replayed or reordered batch is harmless), write what changed. Nodes that changed
 * status make their runs advance (dependants dispatched, retries, run finished) in the same
 * write: one read batch and one write batch per request, whatever the number of events and runs
 * — this is on the path from a step's end to its dependant's start.
 */
import { and, eq, sql } from "drizzle-orm";
import { dagRuns, dagVersions, nodeRuns } from "../../../db/schema";
import type { AgentEvent, EventBatchResult } from "../../../proto/agent";
import type { RunView } from "../../../proto/api";
import { isAttemptOutcome, isTerminalRun } from "../../../proto/status";
import { applyEvents, inSeqOrder, type NodeProgress } from "../scheduler/node-events";
import { writeBatch, type Db, type Writable } from "../db";
import { ApiError } from "../errors";
import { advanceRun, planAdvance } from "./advance";
import { claimHeld } from "./apply";

type Row = typeof nodeRuns.$inferSelect;

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
  const foreign = events.flatMap((e, i) =>
    isWorkOf(byId.get(e.nodeRunId), clusterId, e.attempt) ? [] : [{ path: `events[${i}].nodeRunId`, message: `node run "${e.nodeRunId}" is not work of this cluster` }],
  );
  if (foreign.length > 0) throw new ApiError("forbidden", "the batch reports on work this cluster was not given; nothing was applied", foreign);

  // Each node run moved by its own events; a node run that no event moved is not written.
  const byNode = new Map<string, AgentEvent[]>();
  for (const e of events) {
    const own = byNode.get(e.nodeRunId);
    if (own) own.push(e);
    else byNode.set(e.nodeRunId, [e]);
  }
  const moved = new Map<string, NodeProgress>();
  const appliedSet = new Set<AgentEvent>();
  for (const [id, own] of byNode) {
    const row = byId.get(id)!;
    const before = progressOf(row);
    const { node, applied } = applyEvents(before, own);
    if (node === before) continue;
    moved.set(id, node);
    for (const e of applied) appliedSet.add(e);
  }
  const sorted = [...events].sort(inSeqOrder);
  const applied = sorted.filter((e) => appliedSet.has(e));
  const changed = [...moved].map(([id, { partitions, ...n }]) => ({ id, fromSeq: byId.get(id)!.lastSeq, ...n, ...partitions }));
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
          final_failure = json_extract(j.value, '$.final'),
          failed_partitions = json_extract(j.value, '$.failedPartitions'),
          partition_failures = json_extract(j.value, '$.partitionFailures'),
          image_ref = COALESCE(json_extract(j.value, '$.imageRef'), image_ref),
          cached_from = COALESCE(json(json_extract(j.value, '$.cachedFrom')), cached_from),
          building_since = COALESCE(building_since, json_extract(j.value, '$.buildingSince')),
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
    if (!runNodes.some((n) => moved.has(n.id) && moved.get(n.id)!.status !== n.status)) continue;
    const after = runNodes.map((n) => (moved.has(n.id) ? withProgress(n, moved.get(n.id)!) : n));
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

/**
 * The node run is this cluster's work — or was: an attempt lost with this cluster (`runs/lost.ts`)
 * may still report when its agent comes back. Such late events are answered and ignored (they are
 * of another attempt than the node's current one, or of one that is over), not refused: refusing
 * would drop the rest of the batch too.
 */
function isWorkOf(row: Row | undefined, clusterId: string, attempt: number): boolean {
  if (!row) return false;
  return row.clusterId === clusterId || (row.lostAttempts ?? []).some((l) => l.clusterId === clusterId && l.attempt === attempt);
}

/** What agent events may change of a node run, as stored. */
function progressOf(row: Row): NodeProgress {
  return {
    status: row.status,
    attempt: row.attempt,
    lastSeq: row.lastSeq,
    partitions: { total: row.partitionsTotal, done: row.partitionsDone, failed: row.partitionsFailed, running: row.partitionsRunning },
    mlflowRunId: row.mlflowRunId,
    message: row.message,
    final: row.finalFailure,
    failedPartitions: row.failedPartitions,
    partitionFailures: row.partitionFailures,
    imageRef: row.imageRef,
    cachedFrom: row.cachedFrom ?? null,
    buildingSince: row.buildingSince,
    startedAt: row.startedAt,
    finishedAt: row.finishedAt,
  };
}

/** The row as `progress` leaves it (what the write below makes of it). */
function withProgress(row: Row, p: NodeProgress): Row {
  return {
    ...row,
    status: p.status,
    lastSeq: p.lastSeq,
    partitionsTotal: p.partitions.total,
    partitionsDone: p.partitions.done,
    partitionsFailed: p.partitions.failed,
    partitionsRunning: p.partitions.running,
    mlflowRunId: p.mlflowRunId,
    message: p.message,
    finalFailure: p.final,
    failedPartitions: p.failedPartitions,
    partitionFailures: p.partitionFailures,
    imageRef: p.imageRef,
    cachedFrom: p.cachedFrom,
    buildingSince: p.buildingSince,
    startedAt: p.startedAt,
    finishedAt: p.finishedAt,
  };
}
