/**
 * The agent's NATS side: the connection (opened by nats-connect.ts, over TCP or WebSocket as the
 * URLs say) and the pull loop.
 *
 * Connects as the cluster's own NATS user (`jwtAuthenticator(jwt, seed)`, `inboxPrefix`),
 * reconnects forever with back-off, and pulls from the durable consumer `agent-<clusterId>`
 * (ARCHITECTURE §4), each message to `handleWorkMessage` (work-message.ts: the handler, in-progress
 * acks, and the answer `settlementOf` decides). Follows its connection (health, logs) and NATS
 * moving to other servers; on abort it stops pulling and lets the handlers in flight finish.
 */
import { jwtAuthenticator, type NatsConnection } from "@nats-io/nats-core";
import { jetstream } from "@nats-io/jetstream";
import { Backoff, realSleep, type Clock, type Sleep } from "./backoff";
import type { HealthState } from "./health";
import { errInfo, type Logger } from "./log";
import type { Metrics } from "./metrics";
import { connectNats } from "./nats-connect";
import type { StoredCredentials } from "./register";
import type { WorkHandler } from "./work";
import { handleWorkMessage } from "./work-message";

export interface PullerOptions {
  credentials: StoredCredentials;
  /** Overrides the servers given at registration. */
  servers?: string[] | undefined;
  handler: WorkHandler;
  logger: Logger;
  metrics: Metrics;
  /** Lifetime of one pull request (default 30 s; the server heartbeats every half of it). */
  pullExpiresMs?: number;
  /** Messages buffered per pull (default 16). */
  maxMessages?: number;
  /** In-progress ack period while a handler works (default a third of the consumer's ack_wait, at most 5 s). */
  workingEveryMs?: number;
  /** Redelivery delay after a retryable failure (default 5 s). */
  nakDelayMs?: number;
  /** How long shutdown waits for handlers still running (default 20 s). */
  shutdownGraceMs?: number;
  clock?: Clock;
  sleep?: Sleep;
}

export interface Puller extends HealthState {
  /** Connects, pulls and handles until `signal` aborts; then stops pulling, lets handlers finish, and closes. */
  run(signal: AbortSignal): Promise<void>;
  /** The servers to use from the next connection on; a connection that is down now is dropped, so it is at once. */
  setServers(servers: string[]): void;
}

export function createPuller(o: PullerOptions): Puller {
  const clock = o.clock ?? Date.now;
  const sleep = o.sleep ?? realSleep;
  const log = o.logger;
  const creds = o.credentials;
  let servers = o.servers?.length ? o.servers : creds.nats.servers;
  const keyOf = (list: string[]) => [...list].sort().join(",");
  /** The connection of the current turn of the run loop, and the servers it was opened with. */
  let current: NatsConnection | null = null;
  let currentKey = "";
  /** Whether the servers to use changed since the current connection was opened. */
  const moved = () => keyOf(servers) !== currentKey;
  const inFlight = new Set<Promise<void>>();
  let connected = false;
  let lastPullAt: number | null = null;
  const pulled = () => (lastPullAt = clock());
  /** TCP or WebSocket, as the servers' URLs said (for the log). */
  let openedTransport = "";

  async function open(): Promise<NatsConnection> {
    if (servers.length === 0) throw new Error("the control plane gave no NATS URL at registration; pass --nats-url");
    // nats.js asks for the delay on every turn of its dial loop (also while it waits), so the
    // back-off is a function of how long the connection has been down, not of a call count:
    // 250 ms at first, a quarter of the outage later, at most 10 s.
    let downSince: number | null = null;
    const reconnectDelay = () => Math.min(10_000, Math.max(250, downSince === null ? 0 : (clock() - downSince) / 4));
    const { nc, transport } = await connectNats({
      servers,
      name: `parallels-agent-${creds.clusterId}`,
      inboxPrefix: creds.nats.inboxPrefix,
      authenticator: jwtAuthenticator(creds.nats.jwt, new TextEncoder().encode(creds.nats.seed)),
      maxReconnectAttempts: -1,
      reconnectDelayHandler: reconnectDelay,
      reconnectJitter: 100,
      timeout: 10_000,
      pingInterval: 15_000,
      maxPingOut: 2,
    });
    connected = true;
    openedTransport = transport;
    void (async () => {
      for await (const s of nc.status()) {
        switch (s.type) {
          case "disconnect":
            connected = false;
            downSince ??= clock();
            if (nc === current && moved()) {
              // nats.js would dial the old servers for ever: end this connection, the loop opens one to the new.
              log.warn({ server: s.server, servers }, "disconnected from NATS, which has moved; connecting to the new servers");
              void nc.close().catch(() => undefined);
              break;
            }
            log.warn({ server: s.server }, "disconnected from NATS; reconnecting");
            break;
          case "reconnect":
            connected = true;
            log.info({ server: s.server, downMs: downSince === null ? null : clock() - downSince }, "reconnected to NATS");
            downSince = null;
            break;
          case "error":
            log.error({ err: errInfo(s.error) }, "NATS error");
            break;
          case "staleConnection":
          case "slowConsumer":
            log.warn({ status: s.type }, "NATS connection problem");
            break;
        }
      }
    })().catch(() => undefined);
    return nc;
  }

  /** Pulls until `signal` aborts or the connection closes. */
  async function consume(nc: NatsConnection, signal: AbortSignal): Promise<void> {
    const consumer = await jetstream(nc).consumers.get(creds.nats.stream, creds.nats.consumer);
    const info = (await consumer.info(true)).config;
    const ackWaitMs = (info.ack_wait ?? 30e9) / 1e6;
    const maxDeliver = info.max_deliver ?? -1;
    const workingEveryMs = o.workingEveryMs ?? Math.max(100, Math.min(5000, Math.floor(ackWaitMs / 3)));
    const perMessage = { clusterId: creds.clusterId, handler: o.handler, logger: log, metrics: o.metrics, workingEveryMs, maxDeliver, nakDelayMs: o.nakDelayMs ?? 5000 };
    const messages = await consumer.consume({ max_messages: o.maxMessages ?? 16, expires: o.pullExpiresMs ?? 30_000 });
    const stop = () => void messages.close().catch(() => undefined);
    signal.addEventListener("abort", stop, { once: true });
    void nc.closed().then(stop);
    pulled();
    log.info({ stream: creds.nats.stream, consumer: creds.nats.consumer, ackWaitMs, workingEveryMs, maxDeliver }, "pulling work");
    void (async () => {
      for await (const s of messages.status()) {
        if (s.type === "heartbeat" || s.type === "discard" || (s.type === "debug" && s.code === 408)) pulled();
        else if (s.type === "heartbeats_missed") log.warn({ count: s.count }, "NATS missed pull heartbeats; pulling again");
        else if (s.type === "consumer_deleted" || s.type === "consumer_not_found" || s.type === "stream_not_found")
          log.error({ status: s.type }, "the work consumer is gone; waiting for the control plane to create it again");
      }
    })().catch(() => undefined);
    try {
      for await (const m of messages) {
        pulled();
        const handling = handleWorkMessage(m, signal, perMessage);
        if (handling) {
          inFlight.add(handling);
          void handling.finally(() => inFlight.delete(handling));
        }
      }
    } finally {
      signal.removeEventListener("abort", stop);
    }
  }

  /** On leaving a connection: lets the handlers in flight finish (their answers need it), for a grace period. */
  async function waitForHandlers(): Promise<void> {
    if (inFlight.size === 0) return;
    log.info({ handlers: inFlight.size }, "waiting for work being handled");
    const grace = new AbortController();
    await Promise.race([Promise.allSettled([...inFlight]), sleep(o.shutdownGraceMs ?? 20_000, grace.signal)]);
    grace.abort();
    if (inFlight.size > 0) log.warn({ handlers: inFlight.size }, "shutdown grace over; unacked work will be redelivered");
  }

  return {
    setServers(next) {
      if (next.length === 0 || keyOf(next) === keyOf(servers)) return;
      servers = [...next];
      // A connection that is up stays until it drops (its work goes on); one that is down is ended
      // now: nats.js would keep dialling the old servers.
      if (current && !connected && moved()) void current.close().catch(() => undefined);
    },
    natsConnected: () => connected,
    lastPullAt: () => lastPullAt,
    async run(signal) {
      const backoff = new Backoff({ initialMs: 500, maxMs: 30_000 });
      while (!signal.aborted) {
        let nc: NatsConnection | null = null;
        try {
          const opening = keyOf(servers);
          nc = await open();
          current = nc;
          currentKey = opening;
          if (moved()) {
            log.info({ servers }, "NATS moved while connecting; connecting to the new servers");
          } else {
            log.info({ servers, transport: openedTransport }, "connected to NATS");
            backoff.reset();
            await consume(nc, signal);
            if (!signal.aborted) log.warn("the pull loop ended; connecting again");
          }
        } catch (err) {
          log.error({ err: errInfo(err), servers }, "NATS connection or pull failed; retrying");
        }
        await waitForHandlers();
        current = null;
        if (nc && !nc.isClosed()) await nc.drain().catch(() => nc?.close());
        connected = false;
        if (!signal.aborted) await sleep(backoff.next(), signal);
      }
    },
  };
}
