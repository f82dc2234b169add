/**
 * @module
 * One work message from the pull loop: read it, hand it to the {@link WorkHandler} with
 * in-progress acks while it works, then answer NATS as {@link settlementOf} decides — with the
 * metrics and logs of each answer. A message that is not a WorkMessage (or arrived on another
 * cluster's subject) is terminated at once, never redelivered.
 */
import type { JsMsg } from "@nats-io/jetstream";
import { WorkMessageSchema, workSubject, type WorkMessage } from "../../proto/messages";
import type { AttemptRef } from "./executor/types";
import { errInfo, type Logger } from "./log";
import type { Metrics } from "./metrics";
import { settlementOf, type Settlement } from "./settlement";
import type { WorkHandler } from "./work";

export interface WorkMessageContext {
  clusterId: string;
  handler: WorkHandler;
  logger: Logger;
  metrics: Metrics;
  /** In-progress ack period while the handler works. */
  workingEveryMs: number;
  /** The consumer's `max_deliver`; -1: unlimited. */
  maxDeliver: number;
  /** Redelivery delay after a retryable failure. */
  nakDelayMs: number;
}

/**
 * Handles one message. Returns the handling in progress (it never rejects), or null when the
 * message could not be read and was answered at once.
 */
export function handleWorkMessage(m: JsMsg, signal: AbortSignal, c: WorkMessageContext): Promise<void> | null {
  const log = c.logger;
  const kind = m.subject.split(".").at(-1) ?? "unknown";
  c.metrics.messagesReceived.inc({ kind });
  const read = readWork(m, c.clusterId);
  if (!read.ok) {
    // A start that names its attempt but does not validate: the attempt can never run, so it
    // is reported failed with the problem (a cancel is not: its attempt may well be running).
    const ref = unreadableStart(read.raw, kind);
    if (ref) c.handler.reportUnreadable(ref, `the agent could not read the start message: ${read.reason}`);
    if (answer(log, "term", () => m.term(read.reason))) c.metrics.messagesTerminated.inc({ reason: "unparseable" });
    log.error(
      { subject: m.subject, streamSeq: m.seq, size: m.data.length, reason: read.reason, reported: ref ? `${ref.nodeRunId}#${ref.attempt}` : null },
      "terminated a work message that cannot be read (it will not be redelivered)",
    );
    return null;
  }
  const work = read.work;
  const ctx = { kind: work.type, runId: work.runId, nodeId: work.nodeId, nodeRunId: work.nodeRunId, attempt: work.attempt, deliveries: m.info.deliveryCount };
  log.info(ctx, "work received");
  const working = setInterval(() => answer(log, "working", () => m.working()), c.workingEveryMs);
  const handled = work.type === "start" ? c.handler.handleStart(work, signal) : c.handler.handleCancel(work);
  return handled
    .then(
      () => ({ ok: true }) as const,
      (error: unknown) => ({ ok: false, error }) as const,
    )
    .then((outcome) =>
      carryOut(
        m,
        work,
        settlementOf({ outcome, kind: work.type, deliveryCount: m.info.deliveryCount, maxDeliver: c.maxDeliver, nakDelayMs: c.nakDelayMs }),
        outcome.ok ? undefined : outcome.error,
        c,
        ctx,
      ),
    )
    .catch((err: unknown) => log.error({ ...ctx, err: errInfo(err) }, "unexpected error while answering NATS"))
    .finally(() => clearInterval(working));
}

/** Answers NATS as decided, with the answer's metric and log line (`err`: the handler's failure). */
async function carryOut(m: JsMsg, work: WorkMessage, s: Settlement, err: unknown, c: WorkMessageContext, ctx: object): Promise<void> {
  const log = c.logger;
  switch (s.kind) {
    case "ack":
      if (answer(log, "ack", () => m.ack())) c.metrics.messagesAcked.inc({ kind: work.type });
      return;
    case "giveUp":
      if (work.type === "start") await c.handler.giveUpStart(work, s.reason.slice(0, 4000));
      if (answer(log, "term", () => m.term(s.reason.slice(0, 500)))) c.metrics.messagesTerminated.inc({ reason: "max_deliver" });
      log.error(
        { ...ctx, maxDeliver: c.maxDeliver, reason: s.reason },
        work.type === "start" ? "last delivery failed; the attempt is reported failed and the message terminated" : "last delivery of a cancel failed; message terminated",
      );
      return;
    case "term":
      if (answer(log, "term", () => m.term(s.reason.slice(0, 500)))) c.metrics.messagesTerminated.inc({ reason: "not_retryable" });
      log.error({ ...ctx, err: errInfo(err) }, "work failed for good; message terminated");
      return;
    case "nak":
      if (answer(log, "nak", () => m.nak(s.delayMs))) c.metrics.messagesNaked.inc({ kind: work.type });
      if (s.why === "shutdown") log.info(ctx, "handed back to NATS on shutdown");
      else log.warn({ ...ctx, err: errInfo(err), retryInMs: s.delayMs }, "work failed; NATS redelivers it later");
      return;
  }
}

/** ack/nak/term/working publish on the connection: once it is closed they throw; the message is then redelivered anyway. */
function answer(log: Logger, what: string, fn: () => void): boolean {
  try {
    fn();
    return true;
  } catch (err) {
    log.warn({ err: errInfo(err), what }, "could not answer NATS for a message; it will be redelivered");
    return false;
  }
}

type Read = { ok: true; work: WorkMessage } | { ok: false; reason: string; raw: unknown };

/** The message as a WorkMessage meant for this cluster, or why not (with what was readable of it). */
function readWork(m: JsMsg, clusterId: string): Read {
  let raw: unknown;
  try {
    raw = m.json();
    const parsed = WorkMessageSchema.safeParse(raw);
    if (!parsed.success)
      throw new Error(
        parsed.error.issues
          .slice(0, 5)
          .map((i) => `${i.path.join(".") || "(message)"}: ${i.message}`)
          .join("; "),
      );
    const work = parsed.data;
    if (m.subject !== workSubject(clusterId, work.type)) {
      raw = undefined; // read fine: the subject is wrong, so it is not this cluster's to report on
      throw new Error(`a ${work.type} message arrived on ${m.subject}`);
    }
    return { ok: true, work };
  } catch (err) {
    return { ok: false, reason: `not a work message: ${(err as Error).message}`.slice(0, 500), raw };
  }
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
