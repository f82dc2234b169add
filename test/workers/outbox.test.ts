import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { getDb } from "../../control/src/db";
import type { Dispatcher, OutboundMessage } from "../../control/src/dispatch/interface";
import { backoffMs, drainOutbox } from "../../control/src/dispatch/outbox";
import { call, outboxRows, sampleDag, unique, workspace } from "./harness";

/** Stands in for the NATS publisher, which arrives with the agent: records, or fails on demand. */
class InMemoryDispatcher implements Dispatcher {
  sent: OutboundMessage[] = [];
  failing = false;
  async publish(m: OutboundMessage) {
    if (this.failing) throw new Error("nats unavailable");
    this.sent.push(m);
  }
}

describe("transactional outbox drain (in-memory dispatcher; the NATS one comes with the agent)", () => {
  it("publishes pending rows once, backs off while the dispatcher fails, and never loses a row", async () => {
    const ws = await workspace();
    await call("POST", "/v1/clusters", { token: ws.admin, body: { name: "local", kind: "local" } });
    const dag = unique("d");
    await call("POST", "/v1/dags", { token: ws.write, body: sampleDag(dag) });
    const run = await call("POST", "/v1/runs", { token: ws.write, body: { dag } });
    const db = getDb(env.DB);
    const dispatcher = new InMemoryDispatcher();
    const now = Date.now() + 1000;

    dispatcher.failing = true;
    const failed = await drainOutbox(db, dispatcher, now);
    expect(failed.sent).toBe(0);
    expect(failed.failed).toBeGreaterThanOrEqual(1);
    // Backing off: nothing is retried before the delay.
    expect((await drainOutbox(db, dispatcher, now + 10)).failed).toBe(0);

    dispatcher.failing = false;
    const ok = await drainOutbox(db, dispatcher, now + backoffMs(1) + 1);
    expect(ok.failed).toBe(0);
    const mine = dispatcher.sent.filter((m) => m.msgId.startsWith(run.body.id));
    expect(mine.map((m) => m.msgId)).toEqual([`${run.body.id}-prep.1.start`]);
    expect((await outboxRows(run.body.id)).every((r: { sent_at: number | null }) => r.sent_at !== null)).toBe(true);
    // Drained rows are not published again.
    await drainOutbox(db, dispatcher, now + 60_000);
    expect(dispatcher.sent.filter((m) => m.msgId.startsWith(run.body.id))).toHaveLength(1);
  });
});
