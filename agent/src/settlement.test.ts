import { describe, expect, it } from "vitest";
import { settlementOf, type SettlementInput } from "./settlement";
import { ShuttingDown } from "./work";

const failed = (error: unknown, more: Partial<SettlementInput> = {}): SettlementInput => ({ outcome: { ok: false, error }, kind: "start", deliveryCount: 1, maxDeliver: 5, nakDelayMs: 5000, ...more });
const notRetryable = Object.assign(new Error("the start names a project outside the root"), { retryable: false });

describe("settlementOf", () => {
  it("acks a handled message, also on its last delivery", () => {
    expect(settlementOf({ outcome: { ok: true }, kind: "start", deliveryCount: 1, maxDeliver: 5, nakDelayMs: 5000 })).toEqual({ kind: "ack" });
    expect(settlementOf({ outcome: { ok: true }, kind: "cancel", deliveryCount: 5, maxDeliver: 5, nakDelayMs: 5000 })).toEqual({ kind: "ack" });
  });

  it("naks a retryable failure with the delay while deliveries are left, or without a limit", () => {
    expect(settlementOf(failed(new Error("MLflow is down"), { deliveryCount: 4 }))).toEqual({ kind: "nak", why: "retry", delayMs: 5000 });
    expect(settlementOf(failed(new Error("MLflow is down"), { deliveryCount: 99, maxDeliver: -1 }))).toEqual({ kind: "nak", why: "retry", delayMs: 5000 });
    expect(settlementOf(failed("a thrown string", { deliveryCount: 99, maxDeliver: 0, nakDelayMs: 10 }))).toEqual({ kind: "nak", why: "retry", delayMs: 10 });
  });

  it("hands the message back at once when the agent is shutting down", () => {
    expect(settlementOf(failed(new ShuttingDown(), { deliveryCount: 4 }))).toEqual({ kind: "nak", why: "shutdown", delayMs: undefined });
  });

  it("terminates a failure that says it is not retryable, also on the last delivery (nothing to give up)", () => {
    expect(settlementOf(failed(notRetryable))).toEqual({ kind: "term", reason: "the start names a project outside the root" });
    expect(settlementOf(failed(notRetryable, { deliveryCount: 5 }))).toEqual({ kind: "term", reason: "the start names a project outside the root" });
  });

  it("gives up on the last delivery (or any later one), saying why", () => {
    expect(settlementOf(failed(new Error("MLflow is down"), { deliveryCount: 5 }))).toEqual({
      kind: "giveUp",
      reason: "could not start the attempt after 5 deliveries (the consumer's max_deliver): MLflow is down",
    });
    expect(settlementOf(failed("a thrown string", { kind: "cancel", deliveryCount: 7 }))).toEqual({
      kind: "giveUp",
      reason: "could not cancel the attempt after 7 deliveries (the consumer's max_deliver): a thrown string",
    });
  });

  it("gives up rather than hands back when the agent stops on the last delivery (no one would get it again)", () => {
    expect(settlementOf(failed(new ShuttingDown(), { deliveryCount: 5 }))).toEqual({
      kind: "giveUp",
      reason: "could not start the attempt after 5 deliveries (the consumer's max_deliver): the agent was stopping before the start got room",
    });
  });
});
