/**
 * Moves a stored run forward: read its state (one round trip), let the pure scheduler decide,
 * write the decision with its outbox rows (one transactional batch). Used by cancel, by a
 * schedule releasing a queued run, and by agent events.
 */
import { and, eq, sql } from "drizzle-orm";
import { dagRuns, dagVersions, nodeRuns } from "../../../db/schema";
import type { RunView } from "../../../proto/api";
import type { Dag } from "../../../proto/dag";
import { parseIndexes } from "../../../proto/indexes";
import { isTerminalRun } from "../../../proto/status";
import { writeBatch, type Db } from "../db";
import { ApiError } from "../errors";
import { decide, type SchedulerDecision } from "../scheduler";
import { changesOf, claimHeld, newStateToken, statementsFor, type GuardedWrites, type RunContext } from "./apply";
import { runViewOf } from "./views";

export interface AdvanceOptions {
  /** The caller asks to cancel the run. */
  cancel?: boolean;
  /** With `cancel`: mark active nodes cancelled without waiting for their agents. */
  force?: boolean;
  /** Start a run held in `queued` (a schedule's `queue` overlap policy). */
  start?: boolean;
}

type RunRow = typeof dagRuns.$inferSelect;
type NodeRow = typeof nodeRuns.$inferSelect;

/** What advancing a loaded run writes (`null`: nothing to decide), and how the run looks afterwards. */
export interface AdvancePlan {
  guarded: GuardedWrites | null;
  view: RunView;
}

/** Decisions lost to a concurrent one are made again on a fresh read, this many times at most. */
const MAX_TRIES = 8;

export async function advanceRun(db: Db, workspaceId: string, runId: string, opts: AdvanceOptions = {}, now = Date.now()): Promise<RunView | null> {
  for (let tries = 1; ; tries++) {
    const loaded = await loadRun(db, workspaceId, runId);
    if (!loaded) return null;
    const plan = planAdvance(db, loaded.run, loaded.spec, loaded.nodes, opts, now);
    if (!plan.guarded) return plan.view;
    const results = await writeBatch(db, [plan.guarded.claim, ...plan.guarded.writes]);
    if (claimHeld(results[0])) return plan.view;
    // Another request decided on this run since we read it: decide again on what it left.
    if (tries >= MAX_TRIES) throw new ApiError("conflict", `run ${runId} is changing too fast to decide on; retry`);
  }
}

async function loadRun(db: Db, workspaceId: string, runId: string) {
  const [runs, nodes] = await db.batch([
    db
      .select({ run: dagRuns, spec: dagVersions.spec })
      .from(dagRuns)
      .innerJoin(dagVersions, and(eq(dagVersions.dagId, dagRuns.dagId), eq(dagVersions.version, dagRuns.dagVersion)))
      .where(and(eq(dagRuns.id, runId), eq(dagRuns.workspaceId, workspaceId))),
    db.select().from(nodeRuns).where(eq(nodeRuns.runId, runId)).orderBy(nodeRuns.id),
  ]);
  const found = runs[0];
  return found ? { run: found.run, spec: found.spec, nodes } : null;
}

/**
 * Decides on a run already read (its row, DAG version and node rows) and returns the writes —
 * pure apart from building statements, so callers that loaded the state anyway (agent events)
 * write everything in one batch.
 */
export function planAdvance(db: Db, run: RunRow, spec: string, nodes: NodeRow[], opts: AdvanceOptions, now: number, token = newStateToken()): AdvancePlan {
  if (opts.cancel && isTerminalRun(run.status)) throw new ApiError("conflict", `run ${run.id} has already ${run.status === "cancelled" ? "been cancelled" : run.status}`);
  const cancelRequested = run.cancelRequested || opts.cancel === true;
  // A held run stays untouched until released, unless it is being cancelled.
  if (run.status === "queued" && !opts.start && !cancelRequested) return { guarded: null, view: runViewOf(run, nodes) };

  const dag = JSON.parse(spec) as Dag;
  const ctx: RunContext = {
    runId: run.id,
    workspaceId: run.workspaceId,
    dag,
    dagVersion: run.dagVersion,
    params: run.params as RunContext["params"],
    mlflowRunId: run.mlflowRunId,
    windows: run.windows,
    runStatus: run.status,
    stateToken: run.stateToken,
    nodes: new Map(
      nodes.map((n) => [
        n.nodeId,
        {
          id: n.id,
          attempt: n.attempt,
          clusterId: n.clusterId,
          status: n.status,
          mlflowRunId: n.mlflowRunId,
          failedPartitions: n.failedPartitions,
          partitionsTotal: n.partitionsTotal,
          reusedFrom: n.reusedFrom,
        },
      ]),
    ),
  };
  const decision = decide({
    dag,
    runStatus: run.status,
    cancelRequested,
    forceCancel: opts.cancel === true && opts.force === true,
    nodes: nodes.map((n) => ({
      nodeId: n.nodeId,
      status: n.status,
      attempt: n.attempt,
      final: n.finalFailure,
      ...(n.lostAttempts?.length ? { lost: n.lostAttempts.length } : {}),
      ...(n.failedPartitions ? { partitions: { total: n.partitionsTotal, failed: parseIndexes(n.failedPartitions).length } } : {}),
    })),
  });
  const guarded = statementsFor(db, ctx, decision, now, token);
  if (cancelRequested && !run.cancelRequested) guarded.writes.unshift(db.run(sql`UPDATE dag_runs SET cancel_requested = 1 WHERE id = ${run.id} AND state_token = ${token}`));
  return { guarded, view: runViewOf(applied(run, decision, now, cancelRequested), appliedNodes(ctx, nodes, decision, now)) };
}

function applied(run: RunRow, d: SchedulerDecision, now: number, cancelRequested: boolean) {
  if (d.runStatus === run.status) return { ...run, cancelRequested };
  return {
    ...run,
    cancelRequested,
    status: d.runStatus,
    startedAt: run.startedAt ?? (d.runStatus === "queued" ? null : now),
    finishedAt: isTerminalRun(d.runStatus) ? now : null,
  };
}

function appliedNodes(ctx: RunContext, nodes: NodeRow[], d: SchedulerDecision, now: number) {
  const changes = new Map(changesOf(ctx, d, now).nodes.map((c) => [c.id, c]));
  return nodes.map((n) => {
    const c = changes.get(n.id);
    return c ? { ...n, status: c.status, attempt: c.attempt, finishedAt: c.finishedAt, ...(c.message ? { message: c.message } : {}) } : n;
  });
}
