/**
 * Moves a stored run forward: read its state (one round trip), let the pure scheduler decide,
 * write the decision with its outbox rows (one transactional batch). Used by cancel, by a
 * schedule releasing a queued run, and by agent events.
 */
import { and, eq, sql } from "drizzle-orm";
import { dagRuns, dagVersions, nodeRuns } from "../../../db/schema";
import type { RunView } from "../../../proto/api";
import type { Dag } from "../../../proto/dag";
import { writeBatch, type Db, type Writable } from "../db";
import { ApiError } from "../errors";
import { decide, type SchedulerDecision } from "../scheduler";
import { changesOf, statementsFor, TERMINAL_RUN, type RunContext } from "./apply";
import { runViewOf } from "./views";

export interface AdvanceOptions {
  /** The caller asks to cancel the run. */
  cancel?: boolean;
  /** Start a run held in `queued` (a schedule's `queue` overlap policy). */
  start?: boolean;
}

type RunRow = typeof dagRuns.$inferSelect;
type NodeRow = typeof nodeRuns.$inferSelect;

/** What advancing a loaded run writes, and how the run looks afterwards. */
export interface AdvancePlan {
  writes: Writable[];
  view: RunView;
}

export async function advanceRun(db: Db, workspaceId: string, runId: string, opts: AdvanceOptions = {}, now = Date.now()): Promise<RunView | null> {
  const [runs, nodes] = await db.batch([
    db
      .select({ run: dagRuns, spec: dagVersions.spec })
      .from(dagRuns)
      .innerJoin(dagVersions, and(eq(dagVersions.dagId, dagRuns.dagId), eq(dagVersions.version, dagRuns.dagVersion)))
      .where(and(eq(dagRuns.id, runId), eq(dagRuns.workspaceId, workspaceId))),
    db.select().from(nodeRuns).where(eq(nodeRuns.runId, runId)).orderBy(nodeRuns.id),
  ]);
  const found = runs[0];
  if (!found) return null;
  const plan = planAdvance(db, found.run, found.spec, nodes, opts, now);
  await writeBatch(db, plan.writes);
  return plan.view;
}

/**
 * Decides on a run already read (its row, DAG version and node rows) and returns the writes —
 * pure apart from building statements, so callers that loaded the state anyway (agent events)
 * write everything in one batch.
 */
export function planAdvance(db: Db, run: RunRow, spec: string, nodes: NodeRow[], opts: AdvanceOptions, now: number): AdvancePlan {
  if (opts.cancel && TERMINAL_RUN.includes(run.status)) throw new ApiError("conflict", `run ${run.id} has already ${run.status === "cancelled" ? "been cancelled" : run.status}`);
  const cancelRequested = run.cancelRequested || opts.cancel === true;
  // A held run stays untouched until released, unless it is being cancelled.
  if (run.status === "queued" && !opts.start && !cancelRequested) return { writes: [], view: runViewOf(run, nodes) };

  const dag = JSON.parse(spec) as Dag;
  const ctx: RunContext = {
    runId: run.id,
    workspaceId: run.workspaceId,
    dag,
    dagVersion: run.dagVersion,
    params: run.params as RunContext["params"],
    mlflowRunId: run.mlflowRunId,
    runStatus: run.status,
    nodes: new Map(nodes.map((n) => [n.nodeId, { id: n.id, attempt: n.attempt, clusterId: n.clusterId, status: n.status }])),
  };
  const decision = decide({ dag, runStatus: run.status, cancelRequested, nodes: nodes.map((n) => ({ nodeId: n.nodeId, status: n.status, attempt: n.attempt })) });
  const writes: Writable[] = statementsFor(db, ctx, decision, now);
  if (cancelRequested && !run.cancelRequested) writes.unshift(db.run(sql`UPDATE dag_runs SET cancel_requested = 1 WHERE id = ${run.id}`));
  return { writes, view: runViewOf(applied(run, decision, now, cancelRequested), appliedNodes(ctx, nodes, decision, now)) };
}

function applied(run: RunRow, d: SchedulerDecision, now: number, cancelRequested: boolean) {
  if (d.runStatus === run.status) return { ...run, cancelRequested };
  return {
    ...run,
    cancelRequested,
    status: d.runStatus,
    startedAt: run.startedAt ?? (d.runStatus === "queued" ? null : now),
    finishedAt: TERMINAL_RUN.includes(d.runStatus) ? now : null,
  };
}

function appliedNodes(ctx: RunContext, nodes: NodeRow[], d: SchedulerDecision, now: number) {
  const changes = new Map(changesOf(ctx, d, now).nodes.map((c) => [c.id, c]));
  return nodes.map((n) => {
    const c = changes.get(n.id);
    return c ? { ...n, status: c.status, attempt: c.attempt, finishedAt: c.finishedAt } : n;
  });
}
