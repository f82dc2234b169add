/**
 * The JetStream contract of ARCHITECTURE §4 as data: stream `WORK`, subjects
 * `work.<clusterId>.<kind>`, one durable pull consumer `agent-<clusterId>` per cluster. The control
 * plane creates them with these settings; the tests check the server keeps them.
 */
import type { AckPolicy, ConsumerConfig, DeliverPolicy, RetentionPolicy, StorageType, StreamConfig } from "@nats-io/jetstream";
import { agentConsumerName, WORK_STREAM, workFilterSubject } from "./names";

// Type-only import: the enum values are plain strings on the wire, so this module pulls no NATS
// client code into a bundle (proto/ stays runtime-free).
const NS_PER_MS = 1_000_000;

/**
 * Stream `WORK`: subjects `work.>`, file storage, work-queue retention (a message is gone once
 * acked), and a duplicate window for `Nats-Msg-Id` (default 10 min, longer than the outbox's
 * longest back-off, so a re-published row is still recognised).
 */
export function workStreamConfig(opts: { duplicateWindowMs?: number } = {}): Partial<StreamConfig> & { name: string } {
  return {
    name: WORK_STREAM,
    subjects: ["work.>"],
    storage: "file" as StorageType,
    retention: "workqueue" as RetentionPolicy,
    duplicate_window: (opts.duplicateWindowMs ?? 10 * 60_000) * NS_PER_MS,
    num_replicas: 1,
  };
}

/**
 * Durable pull consumer `agent-<clusterId>` on `work.<clusterId>.>`: explicit ack; redelivery after
 * `ack_wait` (the agent sends in-progress acks while it works), then with back-off, at most
 * `maxDeliver` times. The server sets `ack_wait` to the first back-off step.
 *
 * The agent reads `ack_wait` and `max_deliver` from the consumer it pulls from rather than from
 * here: agents are upgraded later than the control plane, and the server's consumer is what
 * decides which delivery is the last.
 */
export function agentConsumerConfig(clusterId: string, opts: { backoffMs?: readonly number[]; maxDeliver?: number } = {}): Partial<ConsumerConfig> & { durable_name: string } {
  const backoff = opts.backoffMs ?? [30_000, 60_000, 120_000, 300_000];
  const maxDeliver = opts.maxDeliver ?? backoff.length + 1;
  if (maxDeliver <= backoff.length) throw new Error("max_deliver must exceed the number of back-off steps");
  return {
    durable_name: agentConsumerName(clusterId),
    filter_subject: workFilterSubject(clusterId),
    ack_policy: "explicit" as AckPolicy,
    deliver_policy: "all" as DeliverPolicy,
    ack_wait: backoff[0]! * NS_PER_MS,
    backoff: backoff.map((ms) => ms * NS_PER_MS),
    max_deliver: maxDeliver,
    max_ack_pending: 1000,
  };
}
