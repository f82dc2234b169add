/**
 * The agent ↔ control-plane HTTP contract (ARCHITECTURE §5): registration, heartbeats and
 * batched events. Both sides parse these schemas; nothing is cast.
 */
import { z } from "zod";
import { IndexListSchema } from "./indexes";
import { ATTEMPT_OUTCOMES, TERMINAL_RUN_STATUSES } from "./status";

/** A NATS user public key: the agent makes its own nkey pair and sends only this. */
export const NatsUserPublicKey = z.string().regex(/^U[A-Z2-7]{55}$/, "expected a NATS user public key (56 characters starting with U)");

export const AgentRegister = z.strictObject({
  bootstrapToken: z.string().min(1).max(200),
  natsPublicKey: NatsUserPublicKey,
  agentVersion: z.string().min(1).max(100),
});
export type AgentRegister = z.infer<typeof AgentRegister>;

export const AgentRegistered = z.object({
  clusterId: z.string(),
  clusterName: z.string(),
  /** Long-lived secret for heartbeats and events (stored hashed by the control plane). */
  credential: z.string(),
  nats: z.object({
    servers: z.array(z.string()),
    jwt: z.string(),
    inboxPrefix: z.string(),
    stream: z.string(),
    consumer: z.string(),
  }),
  heartbeatSeconds: z.number().int(),
});
export type AgentRegistered = z.infer<typeof AgentRegistered>;

export const Heartbeat = z.strictObject({
  agentVersion: z.string().min(1).max(100),
  kubernetesVersion: z.string().max(100).nullable().default(null),
  allocatable: z
    .strictObject({ cpu: z.string().max(50), memory: z.string().max(50), gpu: z.number().int().min(0) })
    .nullable()
    .default(null),
  runningJobs: z.number().int().min(0),
  /** What builds step images for this cluster (`buildkit moby/buildkit:v0.34.2-rootless`, `kaniko …`, `buildah 1.28.2`); null: none, steps use given images. */
  builder: z.string().max(200).nullable().default(null),
});
export type Heartbeat = z.infer<typeof Heartbeat>;

/**
 * The answer to a heartbeat. `natsServers`: where the control plane's NATS is now, so an agent
 * whose stored URL went stale (NATS moved, or the embedded default chose new ports) follows it.
 */
export const HeartbeatAnswer = z.object({
  ok: z.literal(true),
  serverTime: z.string(),
  heartbeatSeconds: z.number().int(),
  natsServers: z.array(z.string()).default([]),
});
export type HeartbeatAnswer = z.infer<typeof HeartbeatAnswer>;

/** Why one partition failed. */
export const PartitionFailure = z.object({
  index: z.number().int().min(0),
  /** null: it ended without one (killed, timed out, never started). */
  exitCode: z.number().int().nullable(),
  /** Kubernetes' words (OOMKilled, DeadlineExceeded…) or the executor's (timeout, killed). */
  reason: z.string().max(200).optional(),
  /** The last lines of its stderr. */
  stderr: z.string().max(2000).optional(),
});
export type PartitionFailure = z.infer<typeof PartitionFailure>;
export const MAX_PARTITION_FAILURES = 50;

export const AgentEventType = z.enum(["accepted", "building", "built", "running", "progress", ...ATTEMPT_OUTCOMES]);
export type AgentEventType = z.infer<typeof AgentEventType>;

/**
 * One thing that happened to a node run's attempt. `seq` increases per (nodeRunId, attempt);
 * counters are absolute (not deltas), so the newest event carries the whole truth and a replayed
 * or older one can be dropped.
 */
export const AgentEvent = z.strictObject({
  nodeRunId: z.string().min(1).max(200),
  attempt: z.number().int().min(1),
  seq: z.number().int().min(1),
  type: AgentEventType,
  at: z.number().int().min(0),
  counts: z.strictObject({ total: z.number().int().min(0), done: z.number().int().min(0), failed: z.number().int().min(0), running: z.number().int().min(0) }).optional(),
  imageRef: z.string().max(500).optional(),
  mlflowRunId: z.string().max(100).optional(),
  /**
   * On `failed`: retrying the node cannot help — the executor retried within the attempt already
   * (a Kubernetes Job's per-index retries), or the step exited with a code it marked "do not
   * retry". The control plane then dispatches no further attempt.
   */
  final: z.boolean().optional(),
  /**
   * On `failed`: the partitions (indexes of the node's partitions) that failed when others
   * succeeded. The next attempt runs only these, and keeps what the others made.
   */
  failedPartitions: IndexListSchema.optional(),
  /** On `failed`: why partitions failed (the first 50): exit code, reason, the end of stderr. */
  partitionFailures: z.array(PartitionFailure).max(MAX_PARTITION_FAILURES).optional(),
  /**
   * On `succeeded`: the agent ran no step, the node's cache key matched this succeeded node run
   * (`POST /v1/agent/cache`): the node becomes `cached`, its outputs are that run's.
   */
  cachedFrom: z.strictObject({ runId: z.string().min(1).max(200), nodeRunId: z.string().min(1).max(200), mlflowRunId: z.string().min(1).max(100) }).optional(),
  /** The DAG run's MLflow parent run, sent with an attempt's first events: the control plane keeps the first it hears of. */
  mlflowParentRunId: z.string().max(100).optional(),
  message: z.string().max(4000).optional(),
});
export type AgentEvent = z.infer<typeof AgentEvent>;

export const MAX_EVENTS_PER_BATCH = 500;
export const EventBatch = z.strictObject({ events: z.array(AgentEvent).min(1).max(MAX_EVENTS_PER_BATCH) });
export type EventBatch = z.infer<typeof EventBatch>;

export const EventBatchResult = z.object({
  applied: z.number().int(),
  /** Replayed, out-of-order or stale (older attempt) events: accepted and changed nothing. */
  ignored: z.number().int(),
  /**
   * Runs this batch ended (the control plane decides when a DAG run is over): the agent closes
   * the run's MLflow parent run with the matching status.
   */
  endedRuns: z.array(z.object({ runId: z.string(), status: z.enum(TERMINAL_RUN_STATUSES) })).default([]),
});
export type EventBatchResult = z.infer<typeof EventBatchResult>;

/** A cache key as `proto/dag/cache.ts` makes it. */
export const CACHE_KEY = /^v[0-9]+:[0-9a-f]{64}$/;

/**
 * `POST /v1/agent/cache`: a caching node's attempt, prepared (inputs downloaded), asks whether an
 * identical node run succeeded in its workspace. The key is kept on the node run either way, so
 * once it succeeds later runs find it.
 */
export const CacheLookup = z.strictObject({
  nodeRunId: z.string().min(1).max(200),
  attempt: z.number().int().min(1),
  key: z.string().regex(CACHE_KEY, { error: "expected a cache key (v1:<64 hex digits>)" }),
});
export type CacheLookup = z.infer<typeof CacheLookup>;

export const CacheLookupAnswer = z.object({
  /** The node run whose result stands for this one (and its MLflow run, holding the outputs); null: run the step. */
  hit: z.object({ runId: z.string(), nodeRunId: z.string(), mlflowRunId: z.string(), finishedAt: z.string() }).nullable(),
});
export type CacheLookupAnswer = z.infer<typeof CacheLookupAnswer>;
