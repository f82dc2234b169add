/** How runs and node runs look in API answers. Counters are derived from node rows, never stored. */
import { and, eq } from "drizzle-orm";
import { dagRuns, nodeRuns, NODE_STATUSES } from "../../../db/schema";
import type { RunView } from "../../../proto/api";
import { iso } from "../crypto";
import type { Db } from "../db";

type RunRow = Omit<typeof dagRuns.$inferSelect, "workspaceId" | "dagId" | "idempotencyKey" | "requestHash"> & Partial<typeof dagRuns.$inferSelect>;
type NodeRow = Pick<typeof nodeRuns.$inferSelect, "nodeId" | "status" | "attempt" | "clusterId"> & Partial<typeof nodeRuns.$inferSelect>;

export function runSummary(run: RunRow): RunView {
  return {
    id: run.id,
    dag: run.dagName,
    dagVersion: run.dagVersion,
    status: run.status,
    params: run.params as RunView["params"],
    cancelRequested: run.cancelRequested,
    scheduleId: run.scheduleId,
    mlflowRunId: run.mlflowRunId,
    createdAt: iso(run.createdAt)!,
    startedAt: iso(run.startedAt),
    finishedAt: iso(run.finishedAt),
  };
}

export function runViewOf(run: RunRow, nodes: NodeRow[]): RunView {
  const counters: Record<string, number> = { nodes: nodes.length };
  for (const s of NODE_STATUSES) counters[s] = 0;
  for (const n of nodes) counters[n.status]!++;
  return {
    ...runSummary(run),
    counters,
    nodes: nodes.map((n) => ({
      nodeId: n.nodeId,
      status: n.status,
      attempt: n.attempt,
      clusterId: n.clusterId,
      partitions: { total: n.partitionsTotal ?? 0, done: n.partitionsDone ?? 0, failed: n.partitionsFailed ?? 0, running: n.partitionsRunning ?? 0 },
      mlflowRunId: n.mlflowRunId ?? null,
      message: n.message ?? null,
      startedAt: iso(n.startedAt),
      finishedAt: iso(n.finishedAt),
    })),
  };
}

/** The run with its node runs, in one round trip; null when not in this workspace. */
export async function loadRunView(db: Db, workspaceId: string, runId: string): Promise<RunView | null> {
  const [runs, nodes] = await db.batch([
    db.select().from(dagRuns).where(and(eq(dagRuns.id, runId), eq(dagRuns.workspaceId, workspaceId))),
    db.select().from(nodeRuns).where(eq(nodeRuns.runId, runId)).orderBy(nodeRuns.id),
  ]);
  return runs[0] ? runViewOf(runs[0], nodes) : null;
}
