/**
 * @module
 * How the agent answers NATS for a work message once its handler is done — pure, so every branch
 * is tested without a server; `work-message.ts` carries the answer out. In order:
 *
 * 1. The handler resolved (the attempt is durably started, or cancelled) → `ack`.
 * 2. It failed on the consumer's last delivery (`deliveryCount >= max_deliver`), and the error
 *    does not say `retryable: false` → `giveUp`: NATS will not deliver it again, so a start is
 *    reported failed with the reason before the message is terminated (else it would hang).
 * 3. It failed because the agent is shutting down (`ShuttingDown`) → `nak` at once: the work goes
 *    back to NATS for the next agent (or this one after its restart).
 * 4. It failed with `retryable: false` → `term`: no delivery can ever succeed.
 * 5. Otherwise → `nak` after `nakDelayMs`: NATS redelivers it later.
 */
import { ShuttingDown } from "./work";

export type Settlement = { kind: "ack" } | { kind: "nak"; why: "shutdown" | "retry"; delayMs: number | undefined } | { kind: "term"; reason: string } | { kind: "giveUp"; reason: string };

export interface SettlementInput {
  /** How the handler's promise ended. */
  outcome: { ok: true } | { ok: false; error: unknown };
  /** The message's kind, for the reason given when giving up. */
  kind: "start" | "cancel";
  /** This delivery's number (1 the first time). */
  deliveryCount: number;
  /** The consumer's `max_deliver`; -1 or 0: unlimited. */
  maxDeliver: number;
  /** Redelivery delay after a retryable failure. */
  nakDelayMs: number;
}

export function settlementOf(i: SettlementInput): Settlement {
  if (i.outcome.ok) return { kind: "ack" };
  const err = i.outcome.error;
  const retryable = (err as { retryable?: unknown } | null | undefined)?.retryable !== false;
  const lastDelivery = i.maxDeliver > 0 && i.deliveryCount >= i.maxDeliver;
  if (lastDelivery && retryable) {
    const cause = err instanceof ShuttingDown ? "the agent was stopping before the start got room" : messageOf(err);
    return { kind: "giveUp", reason: `could not ${i.kind} the attempt after ${i.deliveryCount} deliveries (the consumer's max_deliver): ${cause}` };
  }
  if (err instanceof ShuttingDown) return { kind: "nak", why: "shutdown", delayMs: undefined };
  if (!retryable) return { kind: "term", reason: messageOf(err) };
  return { kind: "nak", why: "retry", delayMs: i.nakDelayMs };
}

const messageOf = (err: unknown): string => String((err as Error | null | undefined)?.message ?? err);
