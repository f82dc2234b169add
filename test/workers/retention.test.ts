import { createExecutionContext, createScheduledController, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../control/src/index";
import { EVENTS_RETENTION_MS, OUTBOX_RETENTION_MS } from "../../control/src/retention";
import { unique } from "./harness";

const DAY = 24 * 3600_000;

describe("retention (Cron Trigger)", () => {
  it("deletes sent outbox rows after a week and events after 30 days, keeping unsent and recent rows", async () => {
    const now = Date.now();
    const ws = unique("ws");
    const msg = (name: string) => `${ws}-${name}`;
    const outbox = env.DB.prepare("INSERT INTO outbox (msg_id, subject, payload, created_at, attempts, next_attempt_at, sent_at) VALUES (?, 'work.x.start', '{}', ?, 1, ?, ?)");
    const event = env.DB.prepare("INSERT INTO events (workspace_id, type, data, at) VALUES (?, ?, '{}', ?)");
    await env.DB.batch([
      outbox.bind(msg("old-sent"), now - 9 * DAY, now - 9 * DAY, now - OUTBOX_RETENTION_MS - DAY),
      // Never sent (NATS unreachable since): kept, however old, until it is sent.
      outbox.bind(msg("old-unsent"), now - 9 * DAY, now + 60_000, null),
      outbox.bind(msg("recent-sent"), now - DAY, now - DAY, now - DAY),
      event.bind(ws, "old", now - EVENTS_RETENTION_MS - DAY),
      event.bind(ws, "recent", now - 29 * DAY),
    ]);
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ scheduledTime: now, cron: "* * * * *" }), env, ctx);
    await waitOnExecutionContext(ctx);

    const left = await env.DB.prepare("SELECT msg_id FROM outbox WHERE msg_id LIKE ? ORDER BY msg_id").bind(`${ws}-%`).all<{ msg_id: string }>();
    expect(left.results.map((r) => r.msg_id)).toEqual([msg("old-unsent"), msg("recent-sent")]);
    const events = await env.DB.prepare("SELECT type FROM events WHERE workspace_id = ?").bind(ws).all<{ type: string }>();
    expect(events.results.map((r) => r.type)).toEqual(["recent"]);
  });
});
