/**
 * The control plane's D1 schema (drizzle). Migrations in db/migrations are generated from this
 * file by `npm run db:generate` and committed; never hand-edit them.
 *
 * Every object belongs to a workspace; queries always filter by `workspaceId`.
 * Timestamps are epoch milliseconds (integers) so comparisons stay cheap and unambiguous.
 */
import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { NODE_STATUSES, RUN_STATUSES } from "../proto/status";

const createdAt = () => integer("created_at").notNull();

export const workspaces = sqliteTable("workspaces", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  createdAt: createdAt(),
});

/** Bearer tokens. Only the SHA-256 of a token is stored; `prefix` lets a person recognise it. */
export const apiTokens = sqliteTable(
  "api_tokens",
  {
    id: text("id").primaryKey(),
    workspaceId: text("workspace_id")
      .notNull()
      .references(() => workspaces.id),
    name: text("name").notNull(),
    tokenHash: text("token_hash").notNull(),
    prefix: text("prefix").notNull(),
    scope: text("scope", { enum: ["admin", "write", "read"] }).notNull(),
    createdAt: createdAt(),
    revokedAt: integer("revoked_at"),
  },
  (t) => [uniqueIndex("api_tokens_hash").on(t.tokenHash)],
);

export const clusters = sqliteTable(
  "clusters",
  {
    id: text("id").primaryKey(),
    workspaceId: text("workspace_id")
      .notNull()
      .references(() => workspaces.id),
    name: text("name").notNull(),
    kind: text("kind", { enum: ["eks", "ezmeral", "generic", "local"] }).notNull(),
    labels: text("labels", { mode: "json" }).$type<Record<string, string>>().notNull(),
    bootstrapTokenHash: text("bootstrap_token_hash"),
    bootstrapExpiresAt: integer("bootstrap_expires_at"),
    agentCredentialHash: text("agent_credential_hash"),
    natsUserPublicKey: text("nats_user_public_key"),
    registeredAt: integer("registered_at"),
    lastHeartbeatAt: integer("last_heartbeat_at"),
    /** What the agent said in its last heartbeat (versions, allocatable resources, running jobs). */
    agentInfo: text("agent_info", { mode: "json" }).$type<Record<string, unknown>>(),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex("clusters_agent_credential").on(t.agentCredentialHash),
    // One agent key, one cluster: a key registered twice could be revoked through the other one.
    uniqueIndex("clusters_nats_key").on(t.natsUserPublicKey),
    uniqueIndex("clusters_workspace_name").on(t.workspaceId, t.name),
    uniqueIndex("clusters_bootstrap_hash").on(t.bootstrapTokenHash),
  ],
);

/**
 * NATS user keys whose access is revoked. Kept for good: every account-JWT push must carry the
 * full list, or an older JWT silently un-revokes (see docs/architecture.md).
 */
export const natsRevocations = sqliteTable("nats_revocations", {
  publicKey: text("public_key").primaryKey(),
  clusterId: text("cluster_id").notNull(),
  revokedAt: integer("revoked_at").notNull(),
});

/** A DAG is a name; its content lives in immutable versions. Deleting hides it, runs stay. */
export const dags = sqliteTable(
  "dags",
  {
    id: text("id").primaryKey(),
    workspaceId: text("workspace_id")
      .notNull()
      .references(() => workspaces.id),
    name: text("name").notNull(),
    latestVersion: integer("latest_version").notNull(),
    createdAt: createdAt(),
    updatedAt: integer("updated_at").notNull(),
    deletedAt: integer("deleted_at"),
  },
  (t) => [uniqueIndex("dags_workspace_name_live").on(t.workspaceId, t.name).where(sql`deleted_at IS NULL`)],
);

export const dagVersions = sqliteTable(
  "dag_versions",
  {
    dagId: text("dag_id")
      .notNull()
      .references(() => dags.id),
    version: integer("version").notNull(),
    /** The validated DAG document as JSON. */
    spec: text("spec").notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.dagId, t.version] })],
);

export const dagRuns = sqliteTable(
  "dag_runs",
  {
    id: text("id").primaryKey(),
    workspaceId: text("workspace_id")
      .notNull()
      .references(() => workspaces.id),
    dagId: text("dag_id")
      .notNull()
      .references(() => dags.id),
    dagName: text("dag_name").notNull(),
    dagVersion: integer("dag_version").notNull(),
    status: text("status", { enum: RUN_STATUSES }).notNull(),
    params: text("params", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
    cancelRequested: integer("cancel_requested", { mode: "boolean" }).notNull().default(false),
    /**
     * Changed by every decision written about the run. A decision is written only if the token
     * is still the one read with the state it was made on (optimistic concurrency): two requests
     * deciding on one run at once cannot both win with stale views (see runs/apply.ts).
     */
    stateToken: text("state_token").notNull().default(""),
    /** Idempotency-Key of the submit, and a hash of its body: a reuse with another body is refused. */
    idempotencyKey: text("idempotency_key"),
    requestHash: text("request_hash"),
    scheduleId: text("schedule_id"),
    /** The run this one resumes (`POST /v1/runs/{id}/resume`): its succeeded nodes are this one's `reused` ones. */
    resumedFrom: text("resumed_from"),
    mlflowRunId: text("mlflow_run_id"),
    /** The time windows of its windowed inputs, `{"<node>.<input>": {from, to, skipIfEmpty}}`, fixed when it starts. */
    windows: text("windows", { mode: "json" }).$type<import("../proto/dag/windows").RunWindows>(),
    createdAt: createdAt(),
    startedAt: integer("started_at"),
    finishedAt: integer("finished_at"),
  },
  (t) => [
    uniqueIndex("dag_runs_idempotency").on(t.workspaceId, t.idempotencyKey),
    // Lists are newest first by id (ids are time-ordered), optionally for one DAG.
    index("dag_runs_list").on(t.workspaceId, t.id),
    index("dag_runs_dag").on(t.workspaceId, t.dagName, t.id),
    index("dag_runs_schedule").on(t.scheduleId, t.status),
  ],
);

/** One row per node of a run (not per partition: a run's D1 cost must not grow with partitions). */
export const nodeRuns = sqliteTable(
  "node_runs",
  {
    id: text("id").primaryKey(),
    runId: text("run_id")
      .notNull()
      .references(() => dagRuns.id),
    nodeId: text("node_id").notNull(),
    status: text("status", { enum: NODE_STATUSES }).notNull(),
    attempt: integer("attempt").notNull().default(0),
    clusterId: text("cluster_id"),
    /** Highest event sequence applied for the current attempt (idempotent event application). */
    lastSeq: integer("last_seq").notNull().default(0),
    partitionsTotal: integer("partitions_total").notNull().default(0),
    partitionsDone: integer("partitions_done").notNull().default(0),
    partitionsFailed: integer("partitions_failed").notNull().default(0),
    partitionsRunning: integer("partitions_running").notNull().default(0),
    mlflowRunId: text("mlflow_run_id"),
    /** A `reused` node: the node run of an earlier run whose result it is, and that node run's MLflow run. */
    reusedFrom: text("reused_from", { mode: "json" }).$type<import("../proto/api").ReusedFrom>(),
    /** A caching node's key (`proto/dag/cache.ts`), as its agent computed it: once the node run succeeds, later runs' nodes with this key are `cached` from it. */
    cacheKey: text("cache_key"),
    /** A `cached` node: the succeeded node run (of any run of the workspace) with the same key whose result it is. */
    cachedFrom: text("cached_from", { mode: "json" }).$type<import("../proto/api").ReusedFrom>(),
    message: text("message"),
    /** The attempt failed for good: the agent said retrying cannot help (its retries were spent within the attempt). */
    finalFailure: integer("final_failure", { mode: "boolean" }).notNull().default(false),
    /** The partitions that failed in the latest attempt when others succeeded (`"3,7"`): the next attempt runs these. */
    failedPartitions: text("failed_partitions"),
    /** Why (the first 50): `[{index, exitCode, reason, stderr}]`. */
    partitionFailures: text("partition_failures", { mode: "json" }).$type<import("../proto/agent").PartitionFailure[]>(),
    /**
     * Attempts lost with their cluster (`onClusterLost`): `[{attempt, clusterId, since, at}]` —
     * since: the cluster's last heartbeat; at: when the control plane gave up on it. They do not
     * count against `retries`, and that cluster's late events about them are answered, not refused.
     */
    lostAttempts: text("lost_attempts", { mode: "json" }).$type<import("../proto/api").LostAttempt[]>(),
    /** The image the current attempt runs in (or waits for), as the agent reported it. */
    imageRef: text("image_ref"),
    /** When the current attempt started waiting for an image build (its first `building` event). */
    buildingSince: integer("building_since"),
    startedAt: integer("started_at"),
    finishedAt: integer("finished_at"),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [
    uniqueIndex("node_runs_run_node").on(t.runId, t.nodeId),
    index("node_runs_cluster").on(t.clusterId, t.status),
    // Cache lookups: the newest succeeded node run with a key (then filtered to the workspace).
    index("node_runs_cache").on(t.cacheKey, t.status, t.finishedAt),
  ],
);

export const schedules = sqliteTable(
  "schedules",
  {
    id: text("id").primaryKey(),
    workspaceId: text("workspace_id")
      .notNull()
      .references(() => workspaces.id),
    name: text("name").notNull(),
    dagName: text("dag_name").notNull(),
    /** Null: always the DAG's latest version at the time the run is created. */
    dagVersion: integer("dag_version"),
    cron: text("cron").notNull(),
    timezone: text("timezone").notNull(),
    params: text("params", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
    overlapPolicy: text("overlap_policy", { enum: ["skip", "queue"] }).notNull(),
    enabled: integer("enabled", { mode: "boolean" }).notNull(),
    nextRunAt: integer("next_run_at"),
    lastRunAt: integer("last_run_at"),
    lastRunId: text("last_run_id"),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("schedules_workspace_name").on(t.workspaceId, t.name), index("schedules_due").on(t.enabled, t.nextRunAt)],
);

/**
 * Transactional outbox: a row is written in the same D1 batch as the state change that causes
 * it, so a dispatch can be delayed but never lost. `msgId` is the NATS de-duplication id.
 */
export const outbox = sqliteTable(
  "outbox",
  {
    seq: integer("seq").primaryKey({ autoIncrement: true }),
    msgId: text("msg_id").notNull(),
    subject: text("subject").notNull(),
    payload: text("payload").notNull(),
    createdAt: createdAt(),
    attempts: integer("attempts").notNull().default(0),
    nextAttemptAt: integer("next_attempt_at").notNull(),
    sentAt: integer("sent_at"),
  },
  (t) => [uniqueIndex("outbox_msg_id").on(t.msgId), index("outbox_pending").on(t.sentAt, t.nextAttemptAt)],
);

/** Append-only log of what happened, for people and audits. */
export const events = sqliteTable(
  "events",
  {
    seq: integer("seq").primaryKey({ autoIncrement: true }),
    workspaceId: text("workspace_id").notNull(),
    runId: text("run_id"),
    nodeId: text("node_id"),
    type: text("type").notNull(),
    data: text("data", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
    at: integer("at").notNull(),
  },
  (t) => [index("events_run").on(t.runId, t.seq)],
);
