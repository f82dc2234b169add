/**
 * The Durable Object that holds the control plane's NATS connection (workerd refuses I/O on a
 * connection opened by another request, so a connection must live in one object) and drains the
 * transactional outbox into JetStream. An alarm keeps draining while NATS is down.
 */
import { DurableObject } from "cloudflare:workers";
import { jwtAuthenticator, wsconnect, type NatsConnection } from "@nats-io/nats-core";
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { sql } from "drizzle-orm";
import { getDb, type Db } from "../db";
import { drainOutbox } from "../dispatch/outbox";
import type { Dispatcher } from "../dispatch/interface";
import type { Env } from "../env";
import { natsRevocations } from "../../../db/schema";
import { claimsUpdateRequest, parseClaimsUpdateResponse, revocationList } from "../nats";
import { natsMinter } from "./minter";
import type { Publisher } from "./interface";
import { ensureAgentConsumer, ensureWorkStream } from "./work-stream";

/**
 * While NATS is unreachable the drain is tried again this often (an alarm, which also outlives a
 * restart of the control plane): work is published within about this long of NATS being back.
 */
const RETRY_WHEN_DOWN_MS = 500;
/** How often the connection dials a NATS server that went away (nats.js adds up to 100 ms jitter). */
const RECONNECT_WAIT_MS = 250;

export class NatsPublisher extends DurableObject<Env> implements Publisher {
  private connection: Promise<NatsConnection> | null = null;
  /** False while the connection is down and nats.js is dialling again. */
  private connected = false;
  private streamReady = false;
  private draining: Promise<void> | null = null;
  private kickedWhileDraining = false;
  /** Set on reconnect: rows that failed while the connection was going down are due again at once. */
  private reconnected = false;

  private open(user: "control" | "sys"): Promise<NatsConnection> {
    const env = this.env;
    const [jwt, seed] = user === "control" ? [env.NATS_CONTROL_USER_JWT!, env.NATS_CONTROL_USER_SEED!] : [env.NATS_SYS_USER_JWT!, env.NATS_SYS_USER_SEED!];
    return wsconnect({
      servers: env.NATS_WS_URL!.split(","),
      authenticator: jwtAuthenticator(jwt, new TextEncoder().encode(seed)),
      name: `parallels-control-${user}`,
      maxReconnectAttempts: user === "control" ? -1 : 0,
      reconnectTimeWait: RECONNECT_WAIT_MS,
    });
  }

  /** The control user's connection, reopened when it closed. */
  private async nc(): Promise<NatsConnection> {
    if (this.connection) {
      const nc = await this.connection.catch(() => null);
      if (nc && !nc.isClosed()) return nc;
    }
    this.streamReady = false;
    const opening = this.open("control");
    this.connection = opening;
    opening.then(
      (nc) => {
        this.connected = true;
        void this.follow(nc);
      },
      () => (this.connection = null),
    );
    return opening;
  }

  /**
   * Follows the connection's state. Requests made while it is down would only time out (5 s),
   * so the drain waits instead, and the moment it is back the outbox is drained — whatever
   * restarted, and without waiting for other traffic to wake the publisher.
   */
  private async follow(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === "disconnect") this.connected = false;
      else if (s.type === "reconnect") {
        this.connected = true;
        this.reconnected = true;
        void this.kick();
      }
    }
  }

  private async jsm(): Promise<JetStreamManager> {
    // No API check per call: on a connection that is down it is a request that times out.
    const jsm = await jetstreamManager(await this.nc(), { checkAPI: false });
    if (!this.streamReady) {
      await ensureWorkStream(jsm);
      this.streamReady = true;
    }
    return jsm;
  }

  async ensureConsumer(clusterId: string): Promise<void> {
    await ensureAgentConsumer(await this.jsm(), clusterId);
  }

  async kick(): Promise<void> {
    // A kick during a drain may come from rows that drain has already passed: drain once more after it.
    if (this.draining) {
      this.kickedWhileDraining = true;
      return this.draining;
    }
    this.draining = (async () => {
      do {
        this.kickedWhileDraining = false;
        await this.drain();
      } while (this.kickedWhileDraining);
    })().finally(() => (this.draining = null));
    return this.draining;
  }

  override async alarm(): Promise<void> {
    if (await this.ctx.storage.get("revocations-pending")) {
      await this.ctx.storage.delete("revocations-pending");
      await this.syncRevocations().catch(() => undefined);
    }
    await this.kick();
  }

  private async drain(): Promise<void> {
    const db = getDb(this.env.DB);
    try {
      const nc = await this.nc();
      if (!this.connected) {
        // Dialling again: the reconnect drains at once; the alarm is the fallback.
        await this.retrySoonIfPending(db);
        return;
      }
      await this.jsm();
      if (this.reconnected) {
        this.reconnected = false;
        await db.run(sql`UPDATE outbox SET next_attempt_at = ${Date.now()} WHERE sent_at IS NULL AND next_attempt_at > ${Date.now()}`);
      }
      const js = jetstream(nc);
      const dispatcher: Dispatcher = {
        // `msgID` becomes the Nats-Msg-Id header: JetStream drops a duplicate within its window.
        publish: async (m) => {
          await js.publish(m.subject, m.payload, { msgID: m.msgId });
        },
      };
      for (;;) {
        const report = await drainOutbox(db, dispatcher);
        if (report.failed > 0 || !report.more) {
          if (report.nextAttemptAt !== null) await this.ctx.storage.setAlarm(Math.max(Date.now() + 100, report.nextAttemptAt));
          return;
        }
      }
    } catch (err) {
      // NATS is down or refused us: the rows stay pending; try again soon.
      console.error(JSON.stringify({ msg: "outbox drain failed", error: String(err) }));
      await this.retrySoonIfPending(db);
    }
  }

  /** While NATS is unreachable, an alarm tries again soon — only while there is work waiting for it. */
  private async retrySoonIfPending(db: Db): Promise<void> {
    const pending = await db.get(sql`SELECT 1 AS one FROM outbox WHERE sent_at IS NULL LIMIT 1`);
    if (pending) await this.ctx.storage.setAlarm(Date.now() + RETRY_WHEN_DOWN_MS);
  }

  async syncRevocations(): Promise<void> {
    const db = getDb(this.env.DB);
    const rows = await db.select().from(natsRevocations);
    if (rows.length === 0) return;
    // The list only grows (rows are never deleted), so its size and newest entry identify it.
    const version = `${rows.length}:${Math.max(...rows.map((r) => r.revokedAt))}`;
    if ((await this.ctx.storage.get<string>("revocations-pushed")) === version) return;
    try {
      const minter = await natsMinter(this.env);
      if (!minter) throw new Error("NATS_ACCOUNT_SIGNING_SEED/NATS_APP_ACCOUNT are not configured");
      await this.pushAccountJwt(await minter.mintAccountJwt({ revocations: revocationList(rows) }));
      await this.ctx.storage.put("revocations-pushed", version);
    } catch (err) {
      console.error(JSON.stringify({ msg: "revocation push failed; retrying", error: String(err) }));
      await this.ctx.storage.put("revocations-pending", true);
      await this.ctx.storage.setAlarm(Date.now() + RETRY_WHEN_DOWN_MS);
      throw err;
    }
  }

  private async pushAccountJwt(jwt: string): Promise<void> {
    if (!this.env.NATS_SYS_USER_JWT || !this.env.NATS_SYS_USER_SEED) throw new Error("NATS_SYS_USER_JWT/NATS_SYS_USER_SEED are not configured");
    const sys = await this.open("sys");
    try {
      const { subject, payload } = claimsUpdateRequest(jwt);
      const reply = await sys.request(subject, payload, { timeout: 5000 });
      const result = parseClaimsUpdateResponse(reply.data);
      if (!result.ok) throw new Error(`NATS refused the account update (${result.code}): ${result.message}`);
    } finally {
      await sys.close();
    }
  }
}
