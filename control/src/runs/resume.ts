/**
 * Resuming a run (`POST /v1/runs/{id}/resume`): a new run of the same DAG version, linked to the
 * old one (`resumedFrom`), in which the nodes that succeeded are `reused` (see
 * `scheduler/resume.ts` for which) and the others run — a node that failed in some partitions
 * only, when nothing before it changed, runs just those. One read of the old run, then a submit.
 */
import { and, eq } from "drizzle-orm";
import { dagRuns, nodeRuns } from "../../../db/schema";
import type { ReusedFrom, RunResume, RunView } from "../../../proto/api";
import { isResumableRun, RESUMABLE_RUN_STATUSES } from "../../../proto/status";
import type { Db } from "../db";
import type { PartialFailure } from "../scheduler/resume";
import { ApiError, notFound } from "../errors";
import { submitRun, type SubmitOptions } from "./submit";

export async function resumeRun(
  db: Db,
  workspaceId: string,
  runId: string,
  req: RunResume,
  opts: Pick<SubmitOptions, "idempotencyKey" | "requestHash">,
  now = Date.now(),
): Promise<{ run: RunView; created: boolean }> {
  const [runs, nodes] = await db.batch([
    db
      .select()
      .from(dagRuns)
      .where(and(eq(dagRuns.id, runId), eq(dagRuns.workspaceId, workspaceId))),
    db.select().from(nodeRuns).where(eq(nodeRuns.runId, runId)),
  ]);
  const old = runs[0];
  if (!old) throw notFound(`run "${runId}"`);
  if (!isResumableRun(old.status)) {
    throw new ApiError("conflict", `run ${runId} is ${old.status}: only a ${RESUMABLE_RUN_STATUSES.join(" or ")} run can be resumed`, [
      { path: "status", message: `${old.status}, not ${RESUMABLE_RUN_STATUSES.join(" or ")}` },
    ]);
  }
  const params = old.params as Record<string, string | number | boolean>;
  return submitRun(
    db,
    workspaceId,
    { dag: old.dagName, version: old.dagVersion, params: { ...params, ...req.params } },
    {
      ...opts,
      resume: {
        run: { id: old.id, dagId: old.dagId, dagVersion: old.dagVersion, params, windows: old.windows ?? null },
        nodes: nodes.map((n) => ({ nodeId: n.nodeId, status: n.status, from: resultOf(old.id, n), partial: partialOf(old.id, n) })),
      },
    },
    now,
  );
}

/** Where a node run's result is: the node run itself when it succeeded, the one it reused when it was reused (so chains of resumes point at the run that made it). */
function resultOf(runId: string, n: typeof nodeRuns.$inferSelect): ReusedFrom | null {
  if (n.status === "reused") return n.reusedFrom ?? null;
  if (n.status === "cached") return n.cachedFrom ?? null;
  if (n.status === "succeeded" && n.mlflowRunId) return { runId, nodeRunId: n.id, mlflowRunId: n.mlflowRunId };
  return null;
}

/** A failed node run's latest attempt as far as a partition retry needs it (`planContinued` decides whether it applies). */
function partialOf(runId: string, n: typeof nodeRuns.$inferSelect): PartialFailure | undefined {
  if (n.status !== "failed" || !n.failedPartitions || !n.mlflowRunId) return undefined;
  return { runId, nodeRunId: n.id, attempt: n.attempt, mlflowRunId: n.mlflowRunId, partitions: n.failedPartitions, total: n.partitionsTotal };
}
