/**
 * Fixing a held run's input windows when it is released: only then has the run before it ended,
 * so `since: lastRun` starts where that one's windows ended (proto/dag/windows.ts). Written once
 * (`windows IS NULL`): a release that runs twice fixes nothing new.
 */
import { and, eq, sql } from "drizzle-orm";
import { dagRuns, dagVersions } from "../../../db/schema";
import { resolveWindows, type Dag } from "../../../proto/dag";
import type { Db } from "../db";
import { previousWindows } from "./submit";

export async function fixHeldRunWindows(db: Db, runId: string, now: number): Promise<void> {
  const [row] = await db
    .select({ run: dagRuns, spec: dagVersions.spec })
    .from(dagRuns)
    .innerJoin(dagVersions, and(eq(dagVersions.dagId, dagRuns.dagId), eq(dagVersions.version, dagRuns.dagVersion)))
    .where(eq(dagRuns.id, runId));
  if (!row || row.run.windows !== null) return;
  const [previous] = await previousWindows(db, row.run.workspaceId, row.run.dagName, row.run.scheduleId ?? undefined);
  const windows = resolveWindows(JSON.parse(row.spec) as Dag, now, previous?.windows ?? null);
  if (!windows) return;
  await db.run(sql`UPDATE dag_runs SET windows = ${JSON.stringify(windows)} WHERE id = ${runId} AND windows IS NULL`);
}
