/** How runs and node runs look in API answers. Counters are derived from node rows, never stored. */
import { and, eq } from "drizzle-orm";
import { dagRuns, nodeRuns } from "../../../db/schema";
import type { NodeRunDetail, RunView } from "../../../proto/api";
import { NODE_STATUSES } from "../../../proto/status";
import { iso } from "../crypto";
import type { Db } from "../db";

type RunRow = Omit<typeof dagRuns.$inferSelect, "workspaceId" | "dagId" | "idempotencyKey" | "requestHash"> & Partial<typeof dagRuns.$inferSelect>;
type NodeRow = Pick<typeof nodeRuns.$inferSelect, "nodeId" | "status" | "attempt" | "clusterId"> & Partial<typeof nodeRuns.$inferSelect>;

/**
 * Why a run has no MLflow parent run id yet: the agent makes the parent when it starts the run's
 * first step, and reports it with that step's first events.
 */
function mlflowNote(run: RunRow): string | null {
  if (run.mlflowRunId) return null;
  if (run.status === "queued") return "the run is queued: no step has been sent to an agent yet (the agent makes the MLflow parent run when it starts the first step)";
  if (run.status === "running" || run.status === "cancelling") return "no agent has started a step of this run yet (the agent makes the MLflow parent run when it starts the first step)";
  return "no step of this run reached an agent, so it has no MLflow run";
}

/** A run in the MLflow UI (its direct route finds the experiment), when the UI's address is configured. */
export function mlflowRunUrl(mlflowUiUrl: string | undefined, runId: string | null | undefined): string | null {
  if (!mlflowUiUrl || !runId) return null;
  return `${mlflowUiUrl.replace(/\/+$/, "")}/#/runs/${encodeURIComponent(runId)}`;
}

/** Links of a run view into the MLflow UI at `mlflowUiUrl` (the Worker var `MLFLOW_UI_URL`). */
export function withMlflowLinks(view: RunView, mlflowUiUrl: string | undefined): RunView {
  return {
    ...view,
    mlflowUrl: mlflowRunUrl(mlflowUiUrl, view.mlflowRunId),
    ...(view.nodes ? { nodes: view.nodes.map((n) => ({ ...n, mlflowUrl: mlflowRunUrl(mlflowUiUrl, n.mlflowRunId) })) } : {}),
  };
}

export function runSummary(run: RunRow): RunView {
  return {
    id: run.id,
    dag: run.dagName,
    dagVersion: run.dagVersion,
    status: run.status,
    params: run.params as RunView["params"],
    cancelRequested: run.cancelRequested,
    scheduleId: run.scheduleId,
    resumedFrom: run.resumedFrom ?? null,
    mlflowRunId: run.mlflowRunId,
    mlflowUrl: null,
    mlflowNote: mlflowNote(run),
    windows: run.windows ? Object.fromEntries(Object.entries(run.windows).map(([k, w]) => [k, { from: iso(w.from)!, to: iso(w.to)!, skipIfEmpty: w.skipIfEmpty }])) : null,
    createdAt: iso(run.createdAt)!,
    startedAt: iso(run.startedAt),
    finishedAt: iso(run.finishedAt),
  };
}

export function runViewOf(run: RunRow, nodes: NodeRow[]): RunView {
  const counters: Record<string, number> = { nodes: nodes.length };
  for (const s of NODE_STATUSES) counters[s] = 0;
  for (const n of nodes) counters[n.status]!++;
  return { ...runSummary(run), counters, nodes: nodes.map(nodeRunViewOf) };
}

export function nodeRunViewOf(n: NodeRow): NonNullable<RunView["nodes"]>[number] {
  return {
    nodeId: n.nodeId,
    status: n.status,
    attempt: n.attempt,
    clusterId: n.clusterId,
    partitions: { total: n.partitionsTotal ?? 0, done: n.partitionsDone ?? 0, failed: n.partitionsFailed ?? 0, running: n.partitionsRunning ?? 0 },
    mlflowRunId: n.mlflowRunId ?? null,
    mlflowUrl: null,
    message: n.message ?? null,
    imageRef: n.imageRef ?? null,
    buildingSince: iso(n.buildingSince),
    startedAt: iso(n.startedAt),
    finishedAt: iso(n.finishedAt),
    reusedFrom: n.reusedFrom ?? null,
    cachedFrom: n.cachedFrom ?? null,
  };
}

/** One node run of a run, with the partitions its latest attempt lost; null when not in this workspace. */
export async function loadNodeRunDetail(db: Db, workspaceId: string, runId: string, nodeId: string): Promise<NodeRunDetail | null> {
  const rows = await db
    .select({ node: nodeRuns })
    .from(nodeRuns)
    .innerJoin(dagRuns, eq(dagRuns.id, nodeRuns.runId))
    .where(and(eq(nodeRuns.runId, runId), eq(nodeRuns.nodeId, nodeId), eq(dagRuns.workspaceId, workspaceId)));
  const n = rows[0]?.node;
  if (!n) return null;
  return {
    ...nodeRunViewOf(n),
    failedPartitions: n.failedPartitions,
    partitionFailures: n.partitionFailures ?? [],
    lostAttempts: (n.lostAttempts ?? []).map((l) => ({ attempt: l.attempt, clusterId: l.clusterId, since: iso(l.since), at: iso(l.at)! })),
  };
}

/** The run with its node runs, in one round trip; null when not in this workspace. */
export async function loadRunView(db: Db, workspaceId: string, runId: string): Promise<RunView | null> {
  const [runs, nodes] = await db.batch([
    db
      .select()
      .from(dagRuns)
      .where(and(eq(dagRuns.id, runId), eq(dagRuns.workspaceId, workspaceId))),
    db.select().from(nodeRuns).where(eq(nodeRuns.runId, runId)).orderBy(nodeRuns.id),
  ]);
  return runs[0] ? runViewOf(runs[0], nodes) : null;
}
