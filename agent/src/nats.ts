/**
 * The agent's NATS side — the only module that imports `@nats-io/transport-node`.
 *
 * Connects as the cluster's own NATS user (`jwtAuthenticator(jwt, seed)`, `inboxPrefix`),
 * reconnects forever with back-off, and pulls from the durable consumer `agent-<clusterId>`
 * (ARCHITECTURE §4). Each message goes to the {@link WorkHandler}; while it works the message
 * gets in-progress acks, and it is acked only once the handler resolved (work durably started).
 * A message that is not a WorkMessage is terminated (never redelivered) and counted; a retryable
 * failure is nak'ed with a delay.
 */
import { jwtAuthenticator, type NatsConnection } from "@nats-io/nats-core";
import { jetstream, type JsMsg } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { WorkMessageSchema, workSubject, type WorkMessage } from "../../proto/messages";
import { Backoff, realSleep, type Clock, type Sleep } from "./backoff";
import type { HealthState } from "./health";
import { errInfo, type Logger } from "./log";
import type { Metrics } from "./metrics";
import type { AttemptRef } from "./executor/types";
import type { StoredCredentials } from "./register";
import { ShuttingDown, type WorkHandler } from "./work";

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
  let workingEveryMs = o.workingEveryMs ?? 5000;
  /** The consumer's `max_deliver` (read once per consumer); -1: unlimited. */
  let maxDeliver = -1;
  const pulled = () => (lastPullAt = clock());

  async function open(): Promise<NatsConnection> {
    if (servers.length === 0) throw new Error("the control plane gave no NATS URL at registration; pass --nats-url");
    // nats.js asks for the delay on every turn of its dial loop (also while it waits), so the
    // back-off is a function of how long the connection has been down, not of a call count:
    // 250 ms at first, a quarter of the outage later, at most 10 s.
    let downSince: number | null = null;
    const reconnectDelay = () => Math.min(10_000, Math.max(250, downSince === null ? 0 : (clock() - downSince) / 4));
    const nc = await connect({
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

  /** ack/nak/term/working publish on the connection: once it is closed they throw; the message is then redelivered anyway. */
  function settleMsg(what: string, fn: () => void): boolean {
    try {
      fn();
      return true;
    } catch (err) {
      log.warn({ err: errInfo(err), what }, "could not answer NATS for a message; it will be redelivered");
      return false;
    }
  }

  function kindOf(subject: string): string {
    return subject.split(".").at(-1) ?? "unknown";
  }

  /** Handles one message: parse, hand to the handler with in-progress acks, then ack/nak/term. */
  function dispatch(m: JsMsg, signal: AbortSignal): void {
    const kind = kindOf(m.subject);
    o.metrics.messagesReceived.inc({ kind });
    let work: WorkMessage;
    let raw: unknown = undefined;
    try {
      raw = m.json();
      const parsed = WorkMessageSchema.safeParse(raw);
      if (!parsed.success) throw new Error(parsed.error.issues.slice(0, 5).map((i) => `${i.path.join(".") || "(message)"}: ${i.message}`).join("; "));
      work = parsed.data;
      if (m.subject !== workSubject(creds.clusterId, work.type)) throw new Error(`a ${work.type} message arrived on ${m.subject}`);
      raw = undefined; // read fine: the subject is wrong, so it is not this cluster's to report on
    } catch (err) {
      const reason = `not a work message: ${(err as Error).message}`.slice(0, 500);
      // A start that names its attempt but does not validate: the attempt can never run, so it
      // is reported failed with the problem (a cancel is not: its attempt may well be running).
      const ref = unreadableStart(raw, kind);
      if (ref) o.handler.reportUnreadable(ref, `the agent could not read the start message: ${reason}`);
      if (settleMsg("term", () => m.term(reason))) o.metrics.messagesTerminated.inc({ reason: "unparseable" });
      log.error({ subject: m.subject, streamSeq: m.seq, size: m.data.length, reason, reported: ref ? `${ref.nodeRunId}#${ref.attempt}` : null }, "terminated a work message that cannot be read (it will not be redelivered)");
      return;
    }
    const ctx = { kind: work.type, runId: work.runId, nodeId: work.nodeId, nodeRunId: work.nodeRunId, attempt: work.attempt, deliveries: m.info.deliveryCount };
    log.info(ctx, "work received");
    const working = setInterval(() => settleMsg("working", () => m.working()), workingEveryMs);
    const handled = work.type === "start" ? o.handler.handleStart(work, signal) : o.handler.handleCancel(work);
    // The last delivery NATS will make: a failure now is final, and must be reported.
    const lastDelivery = maxDeliver > 0 && m.info.deliveryCount >= maxDeliver;
    const giveUp = async (why: string) => {
      if (work.type === "start") await o.handler.giveUpStart(work, why.slice(0, 4000));
      if (settleMsg("term", () => m.term(why.slice(0, 500)))) o.metrics.messagesTerminated.inc({ reason: "max_deliver" });
      log.error({ ...ctx, maxDeliver, reason: why }, work.type === "start" ? "last delivery failed; the attempt is reported failed and the message terminated" : "last delivery of a cancel failed; message terminated");
    };
    const done = handled
      .then(
        () => {
          if (settleMsg("ack", () => m.ack())) o.metrics.messagesAcked.inc({ kind: work.type });
        },
        async (err: unknown) => {
          if (lastDelivery && (err as { retryable?: unknown })?.retryable !== false) {
            const cause = err instanceof ShuttingDown ? "the agent was stopping before the start got room" : String((err as Error)?.message ?? err);
            await giveUp(`could not ${work.type} the attempt after ${m.info.deliveryCount} deliveries (the consumer's max_deliver): ${cause}`);
          } else if (err instanceof ShuttingDown) {
            if (settleMsg("nak", () => m.nak())) o.metrics.messagesNaked.inc({ kind: work.type });
            log.info(ctx, "handed back to NATS on shutdown");
          } else if ((err as { retryable?: unknown })?.retryable === false) {
            if (settleMsg("term", () => m.term(String((err as Error).message).slice(0, 500)))) o.metrics.messagesTerminated.inc({ reason: "not_retryable" });
            log.error({ ...ctx, err: errInfo(err) }, "work failed for good; message terminated");
          } else {
            if (settleMsg("nak", () => m.nak(o.nakDelayMs ?? 5000))) o.metrics.messagesNaked.inc({ kind: work.type });
            log.warn({ ...ctx, err: errInfo(err), retryInMs: o.nakDelayMs ?? 5000 }, "work failed; NATS redelivers it later");
          }
        },
      )
      .catch((err: unknown) => log.error({ ...ctx, err: errInfo(err) }, "unexpected error while answering NATS"))
      .finally(() => {
        clearInterval(working);
        inFlight.delete(done);
      });
    inFlight.add(done);
  }

  /** Pulls until `signal` aborts or the connection closes. */
  async function consume(nc: NatsConnection, signal: AbortSignal): Promise<void> {
    const consumer = await jetstream(nc).consumers.get(creds.nats.stream, creds.nats.consumer);
    const info = (await consumer.info(true)).config;
    const ackWaitMs = (info.ack_wait ?? 30e9) / 1e6;
    maxDeliver = info.max_deliver ?? -1;
    workingEveryMs = o.workingEveryMs ?? Math.max(100, Math.min(5000, Math.floor(ackWaitMs / 3)));
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
        else if (s.type === "consumer_deleted" || s.type === "consumer_not_found" || s.type === "stream_not_found") log.error({ status: s.type }, "the work consumer is gone; waiting for the control plane to create it again");
      }
    })().catch(() => undefined);
    try {
      for await (const m of messages) {
        pulled();
        dispatch(m, signal);
      }
    } finally {
      signal.removeEventListener("abort", stop);
    }
  }

  async function settle(): Promise<void> {
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
            log.info({ servers }, "connected to NATS");
            backoff.reset();
            await consume(nc, signal);
            if (!signal.aborted) log.warn("the pull loop ended; connecting again");
          }
        } catch (err) {
          log.error({ err: errInfo(err), servers }, "NATS connection or pull failed; retrying");
        }
        await settle();
        current = null;
        if (nc && !nc.isClosed()) await nc.drain().catch(() => nc?.close());
        connected = false;
        if (!signal.aborted) await sleep(backoff.next(), signal);
      }
    },
  };
}

/** The attempt a start message that failed validation still names (nodeRunId and attempt readable), if any. */
export function unreadableStart(raw: unknown, kind: string): AttemptRef | undefined {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return undefined;
  const r = raw as Record<string, unknown>;
  if ((r.type ?? kind) !== "start" || kind !== "start") return undefined;
  const { nodeRunId, attempt } = r;
  if (typeof nodeRunId !== "string" || nodeRunId.length === 0 || nodeRunId.length > 200) return undefined;
  if (typeof attempt !== "number" || !Number.isSafeInteger(attempt) || attempt < 1) return undefined;
  return { runId: typeof r.runId === "string" ? r.runId : "", nodeId: typeof r.nodeId === "string" ? r.nodeId : "", nodeRunId, attempt };
}
