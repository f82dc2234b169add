/**
 * Draining the transactional outbox: publish pending rows in order, mark each sent after the
 * dispatcher confirms it, and back off a row that fails (1 s, 2 s, 4 s … capped at 5 min).
 * At-least-once: a crash between publish and mark re-publishes, and the msg id de-duplicates.
 */
import { and, asc, eq, isNull, lte } from "drizzle-orm";
import { outbox } from "../../../db/schema";
import type { Db } from "../db";
import type { Dispatcher } from "./interface";

const MAX_BACKOFF_MS = 5 * 60_000;

export const backoffMs = (attempts: number) => Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.max(0, attempts - 1));

export interface DrainReport {
  sent: number;
  failed: number;
}

export async function drainOutbox(db: Db, dispatcher: Dispatcher, now = Date.now(), limit = 500): Promise<DrainReport> {
  const rows = await db
    .select()
    .from(outbox)
    .where(and(isNull(outbox.sentAt), lte(outbox.nextAttemptAt, now)))
    .orderBy(asc(outbox.seq))
    .limit(limit);
  const report: DrainReport = { sent: 0, failed: 0 };
  for (const row of rows) {
    try {
      await dispatcher.publish({ subject: row.subject, msgId: row.msgId, payload: row.payload });
      await db.update(outbox).set({ sentAt: Date.now(), attempts: row.attempts + 1 }).where(eq(outbox.seq, row.seq));
      report.sent++;
    } catch {
      const attempts = row.attempts + 1;
      await db.update(outbox).set({ attempts, nextAttemptAt: now + backoffMs(attempts) }).where(eq(outbox.seq, row.seq));
      report.failed++;
    }
  }
  return report;
}
