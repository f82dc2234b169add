import type { JsMsg } from "@nats-io/jetstream";
import { describe, expect, it } from "vitest";
import { workSubject, type WorkCancel, type WorkStart } from "../../proto/messages";
import { createLogger } from "./log";
import { createMetrics } from "./metrics";
import type { WorkHandler } from "./work";
import { handleWorkMessage, type WorkMessageContext } from "./work-message";

const start: WorkStart = {
  type: "start",
  runId: "r1",
  nodeRunId: "r1-a",
  nodeId: "a",
  attempt: 1,
  dag: { name: "d", version: 1 },
  experiment: "d",
  node: { id: "a", project: { uri: "examples/noop" } } as WorkStart["node"],
  params: {},
  upstream: [],
  mlflowParentRunId: null,
};
const cancel: WorkCancel = { type: "cancel", runId: "r1", nodeRunId: "r1-a", nodeId: "a", attempt: 1 };

/** A pulled message that records how it was answered. */
function message(subject: string, body: unknown, deliveryCount = 1) {
  const answers: string[] = [];
  const text = typeof body === "string" ? body : JSON.stringify(body);
  const m = {
    subject,
    seq: 7,
    data: new TextEncoder().encode(text),
    info: { deliveryCount },
    json: () => JSON.parse(text) as unknown,
    ack: () => answers.push("ack"),
    nak: (delay?: number) => answers.push(delay === undefined ? "nak" : `nak ${delay}`),
    term: (reason?: string) => answers.push(`term ${reason}`),
    working: () => answers.push("working"),
  };
  return { m: m as unknown as JsMsg, answers };
}

/** A handler whose start and cancel end as `outcome` says, recording what it was asked. */
function handler(outcome: () => Promise<void>) {
  const calls: string[] = [];
  const h: WorkHandler = {
    handleStart: (w) => {
      calls.push(`start ${w.nodeRunId}`);
      return outcome();
    },
    handleCancel: (w) => {
      calls.push(`cancel ${w.nodeRunId}`);
      return outcome();
    },
    giveUpStart: async (w, why) => void calls.push(`give up ${w.nodeRunId}: ${why}`),
    reportUnreadable: (ref, why) => void calls.push(`unreadable ${ref.nodeRunId}#${ref.attempt}: ${why}`),
  };
  return { h, calls };
}

const context = (h: WorkHandler, more: Partial<WorkMessageContext> = {}): WorkMessageContext => ({
  clusterId: "c1",
  handler: h,
  logger: createLogger({ level: "silent" }),
  metrics: createMetrics(),
  workingEveryMs: 5000,
  maxDeliver: 3,
  nakDelayMs: 5000,
  ...more,
});
const signal = new AbortController().signal;
const counted = async (c: WorkMessageContext, name: string) => (await c.metrics.registry.getSingleMetricAsString(name)).split("\n").filter((l) => !l.startsWith("#"));

describe("handleWorkMessage", () => {
  it("acks once the handler resolved, with in-progress acks while it works", async () => {
    const { h, calls } = handler(() => new Promise((r) => setTimeout(r, 60)));
    const c = context(h, { workingEveryMs: 10 });
    const { m, answers } = message(workSubject("c1", "start"), start);
    await handleWorkMessage(m, signal, c);
    expect(calls).toEqual(["start r1-a"]);
    expect(answers.at(-1)).toBe("ack");
    expect(answers.filter((a) => a === "working").length).toBeGreaterThan(1);
    expect(await counted(c, "parallels_agent_messages_acked_total")).toEqual(['parallels_agent_messages_acked_total{kind="start"} 1']);
  });

  it("carries out the settlement: a retryable failure is nak'ed with the delay", async () => {
    const { h } = handler(() => Promise.reject(new Error("MLflow is down")));
    const { m, answers } = message(workSubject("c1", "cancel"), cancel);
    await handleWorkMessage(m, signal, context(h));
    expect(answers).toEqual(["nak 5000"]);
  });

  it("on the last delivery reports the start failed first, then terminates the message", async () => {
    const { h, calls } = handler(() => Promise.reject(new Error("MLflow is down")));
    const { m, answers } = message(workSubject("c1", "start"), start, 3);
    const c = context(h);
    await handleWorkMessage(m, signal, c);
    const why = "could not start the attempt after 3 deliveries (the consumer's max_deliver): MLflow is down";
    expect(calls).toEqual(["start r1-a", `give up r1-a: ${why}`]);
    expect(answers).toEqual([`term ${why}`]);
    expect(await counted(c, "parallels_agent_messages_terminated_total")).toEqual(['parallels_agent_messages_terminated_total{reason="max_deliver"} 1']);
  });

  it("terminates an unreadable start at once and reports the attempt it names failed", async () => {
    const { h, calls } = handler(() => Promise.resolve());
    const { m, answers } = message(workSubject("c1", "start"), { ...start, node: "???" });
    const c = context(h);
    expect(handleWorkMessage(m, signal, c)).toBeNull();
    expect(calls).toEqual([expect.stringMatching(/^unreadable r1-a#1: the agent could not read the start message: not a work message: node/)]);
    expect(answers).toEqual([expect.stringMatching(/^term not a work message: node/)]);
    expect(await counted(c, "parallels_agent_messages_terminated_total")).toEqual(['parallels_agent_messages_terminated_total{reason="unparseable"} 1']);
  });

  it("terminates a message that is not JSON, reporting nothing", () => {
    const { h, calls } = handler(() => Promise.resolve());
    const { m, answers } = message(workSubject("c1", "start"), "{not json");
    expect(handleWorkMessage(m, signal, context(h))).toBeNull();
    expect(calls).toEqual([]);
    expect(answers).toEqual([expect.stringMatching(/^term not a work message: /)]);
  });

  it("terminates a good start on another cluster's subject without reporting on that attempt (not this cluster's)", () => {
    const { h, calls } = handler(() => Promise.resolve());
    const { m, answers } = message(workSubject("c2", "start"), start);
    expect(handleWorkMessage(m, signal, context(h))).toBeNull();
    expect(calls).toEqual([]);
    expect(answers).toEqual([`term not a work message: a start message arrived on ${workSubject("c2", "start")}`]);
  });
});
