/**
 * Draining the transactional outbox: publish pending rows in order, mark the ones the dispatcher
 * confirmed (JetStream ack) as sent and back off the ones that failed (1 s, 2 s, 4 s … capped at
 * 5 min) — two D1 round trips per drained page whatever its size. At-least-once: a crash between
 * publish and mark re-publishes, and the msg id de-duplicates.
 */
import { sql } from "drizzle-orm";
import { writeBatch, type Db, type Writable } from "../db";
import type { Dispatcher } from "./interface";

const MAX_BACKOFF_MS = 5 * 60_000;

export const backoffMs = (attempts: number) => Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.max(0, attempts - 1));

export interface DrainReport {
  sent: number;
  failed: number;
  /** A full page was drained: call again. */
  more: boolean;
  /** Earliest time a failed or waiting row is due again (ms), or null. */
  nextAttemptAt: number | null;
}

interface Row {
  seq: number;
  msg_id: string;
  subject: string;
  payload: string;
  attempts: number;
}

export async function drainOutbox(db: Db, dispatcher: Dispatcher, now = Date.now(), limit = 200): Promise<DrainReport> {
  const rows = await db.all<Row>(sql`
    SELECT seq, msg_id, subject, payload, attempts FROM outbox
    WHERE sent_at IS NULL AND next_attempt_at <= ${now} ORDER BY seq LIMIT ${limit}`);
  // Issued in order on one connection, so the stream keeps the outbox's order.
  const results = await Promise.allSettled(rows.map((r) => dispatcher.publish({ subject: r.subject, msgId: r.msg_id, payload: r.payload })));
  const sent = rows.filter((_, i) => results[i]!.status === "fulfilled").map((r) => r.seq);
  const failed = rows.filter((_, i) => results[i]!.status === "rejected").map((r) => ({ seq: r.seq, attempts: r.attempts + 1, next: now + backoffMs(r.attempts + 1) }));
  const writes: Writable[] = [];
  if (sent.length) writes.push(db.run(sql`UPDATE outbox SET sent_at = ${Date.now()}, attempts = attempts + 1 WHERE seq IN (SELECT value FROM json_each(${JSON.stringify(sent)}))`));
  if (failed.length) {
    writes.push(
      db.run(sql`
        UPDATE outbox SET attempts = json_extract(j.value, '$.attempts'), next_attempt_at = json_extract(j.value, '$.next')
        FROM json_each(${JSON.stringify(failed)}) AS j WHERE outbox.seq = json_extract(j.value, '$.seq')`),
    );
  }
  await writeBatch(db, writes);
  const waiting = await db.get<{ next: number | null }>(sql`SELECT MIN(next_attempt_at) AS next FROM outbox WHERE sent_at IS NULL`);
  return { sent: sent.length, failed: failed.length, more: rows.length === limit, nextAttemptAt: waiting?.next ?? null };
}
