/**
 * What the control plane keeps, and for how long. Run from the Cron Trigger; each call deletes a
 * bounded number of rows, so a backlog is worked off over several minutes instead of one long
 * statement that would hold D1 up.
 */
import { sql } from "drizzle-orm";
import { writeBatch, type Db } from "./db";

/** Sent outbox rows are kept a week (for audits); unsent ones until they are sent. */
export const OUTBOX_RETENTION_MS = 7 * 24 * 3600_000;
/** The events log (agent reports, scheduler decisions) is kept 30 days. */
export const EVENTS_RETENTION_MS = 30 * 24 * 3600_000;
/** Rows looked at per table and call: the oldest ones, in insertion order. */
export const PRUNE_BATCH = 5_000;

export interface PruneReport {
  outbox: number;
  events: number;
}

export async function pruneExpired(db: Db, now = Date.now()): Promise<PruneReport> {
  const [outbox, events] = await writeBatch(db, [
    // A range on the first column of the `outbox_pending` index.
    db.run(sql`
      DELETE FROM outbox WHERE seq IN (
        SELECT seq FROM outbox WHERE sent_at IS NOT NULL AND sent_at < ${now - OUTBOX_RETENTION_MS} LIMIT ${PRUNE_BATCH})`),
    // Events grow in `seq` order with time, so the oldest are the first by seq: the inner SELECT
    // reads at most PRUNE_BATCH rows, whatever the table's size (no index on `at` to keep up).
    db.run(sql`
      DELETE FROM events WHERE seq IN (
        SELECT seq FROM (SELECT seq, at FROM events ORDER BY seq LIMIT ${PRUNE_BATCH})
        WHERE at < ${now - EVENTS_RETENTION_MS})`),
  ]);
  return { outbox: outbox?.meta.changes ?? 0, events: events?.meta.changes ?? 0 };
}
