/**
 * The Cron Trigger's work: create the runs of schedules that are due, and release runs held by
 * the `queue` overlap policy. Safe to run twice or concurrently: a run's Idempotency-Key is
 * `schedule:<id>:<occurrence>`, so one occurrence makes at most one run.
 *
 * Missed occurrences (the trigger did not fire for a while) are not replayed one by one: one
 * run is made for the first missed occurrence, and the schedule moves on to its next occurrence
 * after now.
 */
import { and, asc, eq, lte, sql } from "drizzle-orm";
import { events, schedules } from "../../../db/schema";
import { ACTIVE_NODE_STATUSES, TERMINAL_RUN_STATUSES } from "../../../proto/status";
import { sqlList, type Db } from "../db";
import { ApiError } from "../errors";
import { advanceRun } from "../runs/advance";
import { fixHeldRunWindows } from "../runs/windows";
import { submitRun } from "../runs/submit";
import { nextOccurrence } from "./cron";

/**
 * A run `o` whose nodes still run although the run is over (it failed fast, and the cancels of
 * its other nodes are on their way): for overlap policies it is still running.
 */
const stillWorking = sql`EXISTS (SELECT 1 FROM node_runs n WHERE n.run_id = o.id AND n.status IN ${sqlList(ACTIVE_NODE_STATUSES)})`;
/** A run `o` that is not over yet. */
const unfinished = sql`o.status NOT IN ${sqlList(TERMINAL_RUN_STATUSES)}`;

/** Idempotency-Keys of runs made by schedules; refused from users so none can pre-empt one. */
export const SCHEDULE_KEY_PREFIX = "schedule:";
const BATCH = 50;

export interface TickReport {
  created: string[];
  skipped: string[];
  failed: { schedule: string; message: string }[];
  released: string[];
}

export async function runDueSchedules(db: Db, now = Date.now()): Promise<TickReport> {
  const report: TickReport = { created: [], skipped: [], failed: [], released: [] };
  const due = await db
    .select()
    .from(schedules)
    .where(and(eq(schedules.enabled, true), lte(schedules.nextRunAt, now)))
    .orderBy(asc(schedules.nextRunAt))
    .limit(BATCH);
  for (const s of due) {
    const occurrence = s.nextRunAt!;
    const active = await db.all<{ id: string }>(sql`
      SELECT o.id FROM dag_runs o WHERE o.schedule_id = ${s.id}
        AND (${unfinished} OR ${stillWorking})
      LIMIT 1`);
    let runId: string | null = null;
    if (active.length > 0 && s.overlapPolicy === "skip") {
      report.skipped.push(s.id);
      await logEvent(db, s.workspaceId, "schedule.skipped", { schedule: s.name, occurrence, activeRun: active[0]!.id }, now);
    } else {
      try {
        const { run } = await submitRun(
          db,
          s.workspaceId,
          { dag: s.dagName, params: s.params as Record<string, string>, ...(s.dagVersion ? { version: s.dagVersion } : {}) },
          { idempotencyKey: `${SCHEDULE_KEY_PREFIX}${s.id}:${occurrence}`, scheduleId: s.id, hold: active.length > 0 },
          now,
        );
        runId = run.id;
        report.created.push(run.id);
      } catch (err) {
        // Only a refusal (the DAG was deleted, no cluster fits…) uses up the occurrence; anything
        // else (D1 unavailable) leaves it due, for the next tick to try again.
        if (!(err instanceof ApiError) || err.status >= 500) {
          report.failed.push({ schedule: s.name, message: `${String(err)} (will retry)` });
          continue;
        }
        const message = `${err.message}${err.details.length ? `: ${err.details.map((d) => `${d.path}: ${d.message}`).join("; ")}` : ""}`;
        report.failed.push({ schedule: s.name, message });
        await logEvent(db, s.workspaceId, "schedule.failed", { schedule: s.name, occurrence, message }, now);
      }
    }
    await db
      .update(schedules)
      .set({ nextRunAt: nextOccurrence(s.cron, s.timezone, Math.max(now, occurrence)), lastRunAt: occurrence, ...(runId ? { lastRunId: runId } : {}) })
      .where(and(eq(schedules.id, s.id), eq(schedules.nextRunAt, occurrence)));
  }
  report.released.push(...(await releaseHeldRuns(db, now)));
  return report;
}

/** Starts the oldest held run of each schedule that has nothing else running. */
export async function releaseHeldRuns(db: Db, now = Date.now(), scheduleId?: string): Promise<string[]> {
  const held = await db.all<{ id: string; workspace_id: string }>(sql`
    SELECT r.id, r.workspace_id FROM dag_runs r
    WHERE r.status = 'queued' AND r.schedule_id IS NOT NULL ${scheduleId ? sql`AND r.schedule_id = ${scheduleId}` : sql``}
      AND NOT EXISTS (SELECT 1 FROM dag_runs o WHERE o.schedule_id = r.schedule_id AND (o.status IN ('running', 'cancelling') OR ${stillWorking}))
      AND r.id = (SELECT MIN(q.id) FROM dag_runs q WHERE q.schedule_id = r.schedule_id AND q.status = 'queued')
    LIMIT ${BATCH}`);
  const released: string[] = [];
  for (const r of held) {
    await fixHeldRunWindows(db, r.id, now);
    await advanceRun(db, r.workspace_id, r.id, { start: true }, now);
    released.push(r.id);
  }
  return released;
}

function logEvent(db: Db, workspaceId: string, type: string, data: Record<string, unknown>, at: number) {
  return db.insert(events).values({ workspaceId, type, data, at });
}
