/**
 * Request and response bodies of the REST API (`/v1/...`), shared by the control plane, the SDK,
 * the UI and the CLI. Requests are strict: an unknown field is an error, not silently dropped.
 */
import { z } from "zod";
import { PartitionFailure } from "./agent";
import { DagSchema } from "./dag/schema";
import { NODE_STATUSES, RUN_STATUSES } from "./status";

/** DNS-1123 label: names that end up in Kubernetes objects, NATS subjects and URLs. */
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dnsLabel = (what: string) => z.string().min(1).max(63).regex(DNS_LABEL, `${what} must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit`);

// Kubernetes-style label keys/values, since cluster labels are matched by node selectors.
const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;
export const LabelsSchema = z.record(
  z.string().regex(LABEL_KEY, "label keys look like `gpu` or `example.com/zone`"),
  z.string().regex(LABEL_VALUE, "label values are at most 63 letters, digits, '-', '_' or '.'"),
);

export const Scope = z.enum(["admin", "write", "read"]);
export type Scope = z.infer<typeof Scope>;

export const ParamValue = z.union([z.string(), z.number(), z.boolean()]);
export type ParamValue = z.infer<typeof ParamValue>;
export const ParamsSchema = z.record(z.string().min(1).max(250), ParamValue);

// ── Workspaces and tokens ──────────────────────────────────────────────────────────────────────
export const WorkspaceCreate = z.strictObject({ name: dnsLabel("name") });
export const TokenCreate = z.strictObject({ name: z.string().min(1).max(100), scope: Scope });
export const TokenView = z.object({
  id: z.string(),
  name: z.string(),
  scope: Scope,
  prefix: z.string(),
  createdAt: z.string(),
  revokedAt: z.string().nullable(),
});
/** The answer to creating a token: the only time its secret is shown. */
export const TokenCreated = TokenView.extend({ token: z.string() });
/** `GET /v1/whoami`: the caller's workspace and scope (the web UI shows them after sign-in). */
export const WhoAmI = z.object({ workspace: z.string(), scope: Scope, root: z.boolean() });
export const WorkspaceCreated = z.object({
  workspace: z.object({ id: z.string(), name: z.string(), createdAt: z.string() }),
  /** The secret of the workspace's first admin token, shown once. */
  adminToken: z.string(),
  token: TokenView,
});

// ── Clusters ──────────────────────────────────────────────────────────────────────────────────
export const ClusterKind = z.enum(["eks", "ezmeral", "generic", "local"]);
export const ClusterCreate = z.strictObject({
  name: dnsLabel("name"),
  kind: ClusterKind,
  labels: LabelsSchema.default({}),
});
export type ClusterCreate = z.infer<typeof ClusterCreate>;
export const ClusterStatus = z.enum(["awaiting_agent", "online", "offline"]);
export const ClusterView = z.object({
  id: z.string(),
  name: z.string(),
  kind: ClusterKind,
  labels: z.record(z.string(), z.string()),
  status: ClusterStatus,
  registeredAt: z.string().nullable(),
  lastHeartbeatAt: z.string().nullable(),
  /** What the agent reported in its last heartbeat. */
  agent: z
    .object({
      agentVersion: z.string(),
      kubernetesVersion: z.string().nullable().optional(),
      allocatable: z.object({ cpu: z.string(), memory: z.string(), gpu: z.number() }).nullable().optional(),
      runningJobs: z.number().optional(),
    })
    .nullable(),
  createdAt: z.string(),
});
export type ClusterView = z.infer<typeof ClusterView>;
export const ClusterCreated = z.object({
  cluster: ClusterView,
  bootstrap: z.object({ token: z.string(), expiresAt: z.string(), helmInstall: z.string() }),
});
export const ClusterDeleted = z.object({ deleted: z.literal(true), cluster: ClusterView });

// ── DAGs ──────────────────────────────────────────────────────────────────────────────────────
export const DagSummary = z.object({
  name: z.string(),
  latestVersion: z.number().int(),
  description: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
/** One version of a DAG: `spec` is the stored document, defaults filled in. */
export const DagView = z.object({
  name: z.string(),
  version: z.number().int(),
  latestVersion: z.number().int(),
  createdAt: z.string(),
  updatedAt: z.string(),
  versionCreatedAt: z.string(),
  spec: DagSchema,
});
export const DagVersionSummary = z.object({ version: z.number().int(), createdAt: z.string() });
/** `POST /v1/dags:validate` of a DAG that can be accepted (otherwise 422 lists every problem). */
export const DagValidation = z.object({ valid: z.literal(true), dag: DagSchema });
/** `GET /v1/dags/{name}?version=N`: that version instead of the latest. */
export const DagGetQuery = z.strictObject({ version: z.coerce.number().int().min(1).optional() });

// ── Runs ──────────────────────────────────────────────────────────────────────────────────────
export const RunStatus = z.enum(RUN_STATUSES);
export const NodeStatus = z.enum(NODE_STATUSES);

export const RunSubmit = z.strictObject({
  dag: dnsLabel("dag"),
  version: z.number().int().min(1).optional(),
  params: ParamsSchema.default({}),
});
export type RunSubmit = z.infer<typeof RunSubmit>;

/** `POST /v1/runs/{id}/resume`: params to change (the others are the resumed run's). */
export const RunResume = z.strictObject({
  params: ParamsSchema.default({}),
});
export type RunResume = z.infer<typeof RunResume>;

/** Where a `reused` node's result comes from: the node run that made it, and its MLflow run (its outputs). */
export const ReusedFrom = z.object({ runId: z.string(), nodeRunId: z.string(), mlflowRunId: z.string() });
export type ReusedFrom = z.infer<typeof ReusedFrom>;

/** An attempt given up with its cluster (`onClusterLost`): the cluster, its last heartbeat (`since`) and when it was given up (`at`). */
export const LostAttempt = z.object({ attempt: z.number().int(), clusterId: z.string(), since: z.number().nullable(), at: z.number() });
export type LostAttempt = z.infer<typeof LostAttempt>;

export const NodeRunView = z.object({
  nodeId: z.string(),
  status: NodeStatus,
  attempt: z.number().int(),
  clusterId: z.string().nullable(),
  partitions: z.object({ total: z.number(), done: z.number(), failed: z.number(), running: z.number() }),
  mlflowRunId: z.string().nullable(),
  /** The node attempt's run in the MLflow UI, when the control plane knows the UI's address (`MLFLOW_UI_URL`). */
  mlflowUrl: z.string().nullable(),
  message: z.string().nullable(),
  /** The image the attempt runs in, or waits for while it is `building` (built from the project's environment). */
  imageRef: z.string().nullable(),
  /** Since when the attempt waits for its image to be built (its first `building`); null when it never waited. */
  buildingSince: z.string().nullable(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  /** A `reused` node: the node run (of an earlier run) whose result it is; `mlflowRunId` is then that run's MLflow run. */
  reusedFrom: ReusedFrom.nullable(),
  /** A `cached` node: the succeeded node run (of this or another run of the workspace) with the same cache key, and its MLflow run (the outputs); the node's own `mlflowRunId` is its child run under this run's parent, tagged `parallels.cachedFrom`. */
  cachedFrom: ReusedFrom.nullable(),
});
/** `GET /v1/runs/{id}/nodes/{node}`: a node run with the partitions its latest attempt lost. */
export const NodeRunDetail = NodeRunView.extend({
  /** The partitions the latest attempt failed in (`"3,7"`; Kubernetes' index list form), or null. */
  failedPartitions: z.string().nullable(),
  /** Why (the first 50): exit code, reason, the end of stderr. */
  partitionFailures: z.array(PartitionFailure),
  /** Attempts given up with their cluster (`onClusterLost`): which cluster, its last heartbeat (null: none), when. They may have run on. */
  lostAttempts: z.array(z.object({ attempt: z.number().int(), clusterId: z.string(), since: z.string().nullable(), at: z.string() })),
});
export type NodeRunDetail = z.infer<typeof NodeRunDetail>;

export const RunCounters = z.object(Object.fromEntries(["nodes", ...NodeStatus.options].map((k) => [k, z.number().int()])));
export const RunView = z.object({
  id: z.string(),
  dag: z.string(),
  dagVersion: z.number().int(),
  status: RunStatus,
  params: z.record(z.string(), ParamValue),
  cancelRequested: z.boolean(),
  scheduleId: z.string().nullable(),
  /** The run this one resumes (`POST /v1/runs/{id}/resume`); null for a run submitted afresh. */
  resumedFrom: z.string().nullable(),
  /** The DAG run's MLflow parent run (tag `parallels.role=dag-run`), reported by the first agent that started a step. */
  mlflowRunId: z.string().nullable(),
  /** The parent run in the MLflow UI, when the control plane knows the UI's address (`MLFLOW_UI_URL`). */
  mlflowUrl: z.string().nullable(),
  /** The time windows its windowed inputs take (`"<node>.<input>"` → `[from, to)`), fixed when it started; null: none. */
  windows: z.record(z.string(), z.object({ from: z.string(), to: z.string(), skipIfEmpty: z.boolean() })).nullable(),
  /** Why `mlflowRunId` is null (no step has reached an agent yet, or none ever did); null once it is known. */
  mlflowNote: z.string().nullable(),
  createdAt: z.string(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  counters: RunCounters.optional(),
  nodes: z.array(NodeRunView).optional(),
});
export type RunView = z.infer<typeof RunView>;

/** `?limit=&cursor=` of the lists ordered by name (or id): the cursor is the last item's key. */
export const PageQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(200).optional(),
});

export const RunListQuery = z.strictObject({
  dag: dnsLabel("dag").optional(),
  status: RunStatus.optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(200).optional(),
});

/** `GET /v1/runs/{id}/nodes/{node}/logs`: one stream of one partition's log, from a byte offset (for following it). */
export const NodeLogQuery = z.strictObject({
  partition: z.coerce.number().int().min(0).optional(),
  stream: z.enum(["stdout", "stderr"]).default("stdout"),
  offset: z.coerce.number().int().min(0).default(0),
});
export const LogText = z.string();

/** `POST /v1/runs/{id}/cancel?force=true`: don't wait for agents that may be gone. */
export const RunCancelQuery = z.strictObject({
  force: z
    .enum(["true", "false"], { error: 'expected "true" or "false"' })
    .default("false")
    .transform((v) => v === "true"),
});

// ── Schedules ─────────────────────────────────────────────────────────────────────────────────
export const OverlapPolicy = z.enum(["skip", "queue"]);
export const ScheduleCreate = z.strictObject({
  name: dnsLabel("name"),
  dag: dnsLabel("dag"),
  version: z.number().int().min(1).optional(),
  cron: z.string().min(1).max(200),
  timezone: z.string().min(1).max(64).default("UTC"),
  params: ParamsSchema.default({}),
  overlapPolicy: OverlapPolicy.default("skip"),
  enabled: z.boolean().default(true),
});
export type ScheduleCreate = z.infer<typeof ScheduleCreate>;
export const ScheduleView = z.object({
  id: z.string(),
  name: z.string(),
  dag: z.string(),
  version: z.number().int().nullable(),
  cron: z.string(),
  timezone: z.string(),
  params: z.record(z.string(), ParamValue),
  overlapPolicy: OverlapPolicy,
  enabled: z.boolean(),
  nextRunAt: z.string().nullable(),
  lastRunAt: z.string().nullable(),
  lastRunId: z.string().nullable(),
  createdAt: z.string(),
});

/** Pause or resume a schedule. */
export const ScheduleUpdate = z.strictObject({ enabled: z.boolean() });

// ── Answers shared by several resources ──────────────────────────────────────────────────────
export const Page = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item), nextCursor: z.string().nullable() });
export const TokenPage = Page(TokenView);
export const ClusterPage = Page(ClusterView);
export const DagPage = Page(DagSummary);
export const DagVersionPage = Page(DagVersionSummary);
export const RunPage = Page(RunView);
export const SchedulePage = Page(ScheduleView);
/** The answer to deleting a DAG or a schedule. */
export const Deleted = z.object({ deleted: z.literal(true), name: z.string() });
export const Health = z.object({ ok: z.literal(true) });
