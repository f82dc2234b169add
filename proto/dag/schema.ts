/**
 * @module
 * The DAG document: zod schemas shared by the API, UI, SDK, CLI and agent.
 *
 * These schemas check *structure* only (types, formats, limits, unknown fields). Graph rules
 * (duplicate ids, unknown nodes, cycles, partitions over missing inputs) live in `validate.ts`;
 * use `validateDag` / `parseDagText` to get every problem with a readable path and message.
 *
 * Every object is strict: a misspelled field is an error, never silently dropped.
 * Only Web-standard APIs are used (workerd, Node and browsers).
 */
import { z } from "zod";

/** At most this many nodes in one DAG. */
export const MAX_NODES = 2000;
/** Upper bound of `parallelism` and of `hash` partitions. */
export const MAX_PARALLELISM = 100_000;
/** Largest accepted DAG document, in bytes of UTF-8 text (the API answers 413 above it). */
export const MAX_DAG_BYTES = 1024 * 1024;
/** Upper bound of `retries`. */
export const MAX_RETRIES = 10;

/**
 * DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit,
 * at most 63 characters. Used for node ids (they become part of Kubernetes object names) and for
 * DAG names (they name MLflow experiments, runs and Kubernetes objects, so the same rule applies).
 */
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** Names of a node's inputs (they become folder names inside the container). */
export const INPUT_NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;
/** Environment variable names. */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/**
 * Kubernetes resource quantity (non-negative): a decimal number with an optional decimal exponent
 * (`1e3`) or SI / binary suffix (`500m`, `2`, `1.5`, `512Mi`, `4Gi`, `1G`).
 */
export const QUANTITY = /^(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;

const dnsLabel = (what: string) =>
  z
    .string()
    .max(63, { error: `${what} must be at most 63 characters` })
    .regex(DNS_LABEL, {
      error: `${what} must be a DNS-1123 label: lowercase letters, digits and "-", starting and ending with a letter or digit`,
    });

const intRange = (min: number, max: number) => {
  const error = `expected an integer from ${min} to ${max}`;
  return z.int({ error }).min(min, { error }).max(max, { error });
};

const nonEmpty = () => z.string().min(1, { error: "must not be empty" });

/** A parameter value: what MLflow accepts as a project parameter. */
const ParamValueSchema = z.union([z.string(), z.number(), z.boolean()], {
  error: "expected a string, number or boolean",
});

/** `^...$` regex source that must compile (no flags; JavaScript syntax). */
const compilingRegex = () =>
  nonEmpty().superRefine((source, ctx) => {
    const problem = regexProblem(source);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  });

/** Number of capture groups of a compilable regex source. */
export function captureGroupCount(source: string): number {
  // A regex `x|` always matches the empty string, and the match has one slot per group.
  return (new RegExp(`${source}|`).exec("")?.length ?? 1) - 1;
}

function regexProblem(source: string): string | undefined {
  try {
    new RegExp(source);
    return undefined;
  } catch (e) {
    const reason = e instanceof Error ? e.message.replace(/^Invalid regular expression: /, "") : String(e);
    return `invalid regular expression: ${reason}`;
  }
}

export const ProjectSchema = z.strictObject({
  /** Git URL (`https://…`, `git@…`, optionally `#subdir`) or a local path (local executor). */
  uri: nonEmpty(),
  /** Git commit, branch or tag. Never starts with "-": git would read it as an option. */
  version: nonEmpty()
    .refine((v) => !v.startsWith("-"), { error: 'must not start with "-" (a git commit, branch or tag name never does; git would read it as an option)' })
    .optional(),
  /** Folder of the MLproject inside the repository: relative, without `..`. */
  subdirectory: z
    .string()
    .refine((s) => !s.startsWith("/") && !s.split("/").includes(".."), {
      error: 'must be a relative path without ".."',
    })
    .optional(),
});

/** A positive duration: `30s`, `15m`, `2h`, `1d`. */
export const DURATION = /^[1-9]\d{0,8}(s|m|h|d)$/;
const duration = () => z.string().regex(DURATION, { error: 'expected a positive duration such as "30s", "15m", "2h" or "1d"' });
const instant = () => z.iso.datetime({ offset: true, error: 'expected an ISO 8601 date and time such as "2026-12-01T00:00:00Z"' });

/**
 * Which items of an input a run takes, by when they arrived ("arrived" per source: README.md
 * "Using the API", docs/architecture.md "Input windows"): a local folder's file (`uri`, a path
 * or `file://`; the embedded default), by its modification time; an `{experiment}` input's run,
 * by its end time. Other
 * sources have no per-item time and are refused at validation (windows.ts `windowRefusal`).
 * `{since: lastRun}` — those after the window of the previous successful run of the same
 * schedule (or DAG) ended, so consecutive runs take every item once; `{last: "15m"}` — the 15
 * minutes before the run's time; `{from, to?}` — absolute (`to` default: the run's time).
 * `skipIfEmpty` (default true): a node whose window holds nothing succeeds at once, without
 * starting a step.
 */
export const WindowSchema = z.union(
  [
    z.strictObject({ since: z.literal("lastRun", { error: 'expected "lastRun"' }), skipIfEmpty: z.boolean().optional() }),
    z.strictObject({ last: duration(), skipIfEmpty: z.boolean().optional() }),
    z.strictObject({ from: instant(), to: instant().optional(), skipIfEmpty: z.boolean().optional() }),
  ],
  { error: 'expected a window: {since: lastRun}, {last: "15m"} or {from, to}' },
);
const window = () => WindowSchema.optional();

/**
 * Execution caching: `true`, or `{maxAge: "7d"}` (a hit older than that runs again). A node whose
 * cache key (project, entry point, parameters, environment, input contents: `cache.ts`) matches a
 * succeeded node run of the workspace is `cached`, not run. On the DAG it applies to every node
 * that does not say otherwise (`cache: false` opts a node out).
 */
export const CacheSchema = z.union([z.boolean(), z.strictObject({ maxAge: duration() })], {
  error: 'expected true, false or {maxAge: "7d"}',
});

/** `{node, path?}`: artifacts of an upstream node's run (optionally a sub-path). */
export const NodeInputSchema = z.strictObject({ node: nonEmpty(), path: z.string().optional(), window: window() });
/** `{run, path?}`: artifacts of any MLflow run, by run id. */
export const RunInputSchema = z.strictObject({ run: nonEmpty(), path: z.string().optional(), window: window() });
/** `{uri}`: any URI the agent can read (s3://, gs://, https://, file://…). */
export const UriInputSchema = z.strictObject({ uri: nonEmpty(), window: window() });
/**
 * `{experiment, path?}`: the artifacts (below `path`) of the FINISHED runs of an MLflow
 * experiment (by name, else by id), each run's in a folder named by its run id — a stream of
 * micro-batches, one run each; with a window, the runs that ended in it.
 */
export const ExperimentInputSchema = z.strictObject({ experiment: nonEmpty(), path: z.string().optional(), window: window() });

export const InputRefSchema = z.union([NodeInputSchema, RunInputSchema, UriInputSchema, ExperimentInputSchema], {
  error: "expected exactly one of {node, path?}, {run, path?}, {uri} or {experiment, path?}",
});

const inputName = z.string().regex(INPUT_NAME, {
  error: 'input names start with a letter or "_" and contain only letters, digits, "_" and "-"',
});

/** A field of the key–value metadata an upstream step attached to its outputs (`.metadata.jsonl`). */
const metadataField = () => nonEmpty().max(200, { error: "a metadata field name has at most 200 characters" });

/**
 * How a hash partition derives the key of each object (its path relative to the input):
 * `path` (whole relative path, the default), `basename`, `stem` (basename without the last
 * extension), `{regex}` whose single capture group is the key, or `{metadata: "<field>"}`: the
 * value of that field of the object's metadata (an object without it is in no bucket).
 * Declarative: never user code.
 */
export const HashKeySchema = z.union(
  [
    z.enum(["path", "basename", "stem"]),
    z.strictObject({
      regex: compilingRegex().superRefine((source, ctx) => {
        if (regexProblem(source)) return; // already reported
        const groups = captureGroupCount(source);
        if (groups !== 1) {
          ctx.addIssue({ code: "custom", message: `expected exactly one capture group, found ${groups}` });
        }
      }),
    }),
    z.strictObject({ metadata: metadataField() }),
  ],
  { error: 'expected "path", "basename", "stem", {regex: "<pattern with one capture group>"} or {metadata: "<field>"}' },
);

/**
 * How a node's work is split across containers (each container reads its slice of a manifest):
 * - `none`: one partition; `input`, if given, is only checked.
 * - `object`: one partition per file of `input`; `directory`: one per top-level folder.
 * - `broadcast`: every partition gets all of `input`.
 * - `hash`: objects spread over `partitions` buckets by a hash of their key.
 * - `regex`: objects whose relative path matches `pattern` are grouped by the value of capture
 *   `group` (number or name; default 1 if the pattern has a group, else the whole match). With
 *   `metadata: "<field>"` the pattern is matched against that metadata field's value instead of
 *   the path (an object without the field is in no partition, like one that does not match).
 */
export const PartitionSchema = z.discriminatedUnion("by", [
  z.strictObject({ by: z.literal("none"), input: z.string().optional() }),
  z.strictObject({ by: z.literal("object"), input: z.string() }),
  z.strictObject({ by: z.literal("directory"), input: z.string() }),
  z.strictObject({ by: z.literal("broadcast"), input: z.string() }),
  z.strictObject({
    by: z.literal("hash"),
    input: z.string(),
    key: HashKeySchema.default("path"),
    partitions: intRange(1, MAX_PARALLELISM),
  }),
  z
    .strictObject({
      by: z.literal("regex"),
      input: z.string(),
      pattern: compilingRegex(),
      metadata: metadataField().optional(),
      group: z.union([intRange(0, 99), nonEmpty()], { error: "expected a group number or name" }).optional(),
    })
    .superRefine((p, ctx) => {
      if (p.group === undefined || regexProblem(p.pattern)) return;
      if (typeof p.group === "number") {
        const n = captureGroupCount(p.pattern);
        if (p.group > n) ctx.addIssue({ code: "custom", path: ["group"], message: `the pattern has only ${n} capture group(s)` });
      } else {
        const names = Object.keys(new RegExp(`${p.pattern}|`).exec("")?.groups ?? {});
        if (!names.includes(p.group)) {
          ctx.addIssue({ code: "custom", path: ["group"], message: `the pattern has no group named "${p.group}"` });
        }
      }
    }),
]);

/** Kubernetes label keys (`gpu`, `example.com/zone`) and values. */
const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;

/**
 * A cluster name, or a label selector matched against the clusters' labels. The selector's keys
 * and values are held to the rules of cluster labels (api.ts): one that no label can have would
 * never match, so it is refused with its field named rather than placed nowhere.
 */
export const ClusterSelectorSchema = z.union(
  [
    nonEmpty(),
    z
      .record(
        z.string().regex(LABEL_KEY, { error: "label keys look like `gpu` or `example.com/zone`" }),
        z.string().regex(LABEL_VALUE, { error: "label values are at most 63 letters, digits, '-', '_' or '.'" }),
      )
      .refine((labels) => Object.keys(labels).length > 0, {
        error: "a label selector needs at least one label",
      }),
  ],
  { error: 'expected a cluster name or a label selector such as {gpu: "true"}' },
);

export const ResourcesSchema = z.strictObject({
  /** CPU request: a quantity (`"500m"`, `"2"`) or a positive number of cores. */
  cpu: z
    .union([z.string().regex(QUANTITY, { error: 'expected a Kubernetes quantity such as "500m" or "2"' }), z.number().positive()], {
      error: 'expected a Kubernetes quantity such as "500m" or a number of cores',
    })
    .optional(),
  /** Memory request: a quantity such as `"512Mi"` or `"4Gi"`. */
  memory: z.string().regex(QUANTITY, { error: 'expected a Kubernetes quantity such as "512Mi" or "4Gi"' }).optional(),
  /** Number of GPUs per container. */
  gpu: z.int({ error: "expected an integer ≥ 0" }).min(0, { error: "expected an integer ≥ 0" }).optional(),
});

/**
 * An OCI image reference: `[registry[:port]/]repository[:tag][@digest]` (lowercase repository
 * path, as the distribution spec requires).
 */
export const IMAGE_REF =
  /^(?:[a-zA-Z0-9.-]+(?::\d+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@[a-z0-9]+(?::[a-z0-9]+)?:[a-fA-F0-9]{32,})?$/;

/** Kubernetes node labels a node's pods must land on (e.g. a GPU pool). */
export const NodeSelectorSchema = z.record(
  z.string().regex(LABEL_KEY, { error: "label keys look like `pool` or `example.com/zone`" }),
  z.string().regex(LABEL_VALUE, { error: "label values are at most 63 letters, digits, '-', '_' or '.'" }),
);

/** A Kubernetes toleration, as in a pod spec. */
export const TolerationSchema = z
  .strictObject({
    key: z.string().regex(LABEL_KEY, { error: "taint keys look like `nvidia.com/gpu`" }).optional(),
    operator: z.enum(["Exists", "Equal"]).default("Equal"),
    value: z.string().regex(LABEL_VALUE, { error: "taint values are at most 63 letters, digits, '-', '_' or '.'" }).optional(),
    effect: z.enum(["NoSchedule", "PreferNoSchedule", "NoExecute"]).optional(),
    tolerationSeconds: z.int().min(0).optional(),
  })
  .refine((t) => t.operator !== "Exists" || t.value === undefined, { error: 'a toleration with operator "Exists" has no value', path: ["value"] })
  .refine((t) => t.key !== undefined || t.operator === "Exists", { error: 'a toleration without a key must use operator "Exists"', path: ["operator"] });

export const DagNodeSchema = z.strictObject({
  id: dnsLabel("a node id"),
  project: ProjectSchema,
  entryPoint: nonEmpty().default("main"),
  parameters: z.record(z.string(), ParamValueSchema).optional(),
  cluster: ClusterSelectorSchema.optional(),
  /** Most containers running at once for this node. */
  parallelism: intRange(1, MAX_PARALLELISM).default(1),
  partition: PartitionSchema.optional(),
  inputs: z.record(inputName, InputRefSchema).optional(),
  /** Extra ordering: node ids that must succeed first (beyond those named in `inputs`). */
  after: z.array(nonEmpty()).optional(),
  resources: ResourcesSchema.optional(),
  /**
   * The container image that runs the step on a Kubernetes cluster (until the agent builds
   * images itself, a project without a `docker_env` needs one). Ignored by the local executor.
   */
  image: z.string().max(500).regex(IMAGE_REF, { error: 'expected an image reference such as "python:3.11-slim" or "registry.example.com/team/step:1.2@sha256:…"' }).optional(),
  /** Kubernetes only: node labels the step's pods must land on (added to the cluster's own). */
  nodeSelector: NodeSelectorSchema.optional(),
  /** Kubernetes only: taints the step's pods tolerate (added to the cluster's own; GPU steps get the cluster's GPU tolerations). */
  tolerations: z.array(TolerationSchema).max(20).optional(),
  retries: intRange(0, MAX_RETRIES).default(0),
  /**
   * Exit codes with which the step says "retrying will not help": a partition that exits with
   * one fails at once, without using its retries.
   */
  noRetryExitCodes: z.array(intRange(1, 255)).max(20).optional(),
  /**
   * A partitioned node succeeds when at least this share of its partitions succeeded (after its
   * retries), and says which failed. Default 1: every partition must.
   */
  minSuccessRatio: z
    .number({ error: "expected a number above 0 and at most 1" })
    .gt(0, { error: "expected a number above 0 and at most 1" })
    .lte(1, { error: "expected a number above 0 and at most 1" })
    .optional(),
  timeoutSeconds: z.int({ error: "expected a positive integer" }).positive({ error: "expected a positive integer" }).optional(),
  env: z
    .record(
      z.string().regex(ENV_NAME, {
        error: 'environment variable names start with a letter or "_" and contain only letters, digits and "_"',
      }),
      z.string(),
    )
    .optional(),
  /** Skip the step when an identical one (same key) succeeded before: see {@link CacheSchema}. */
  cache: CacheSchema.optional(),
});

/**
 * What happens to a node whose cluster stops heartbeating (`onClusterLost`): after `grace` without
 * a heartbeat, `fail` fails the node (naming the cluster), `retryElsewhere` starts its next attempt
 * on another online cluster matching its selector, `wait` keeps waiting (a forced cancel ends it).
 * Both fields optional; absent: `{policy: fail, grace: 10m}` (`clusterLostPolicy`).
 */
export const ClusterLostSchema = z.strictObject({
  policy: z.enum(["wait", "retryElsewhere", "fail"], { error: 'expected "wait", "retryElsewhere" or "fail"' }).optional(),
  grace: duration().optional(),
});

export const DagSchema = z.strictObject({
  name: dnsLabel("a DAG name"),
  description: z.string().optional(),
  /** DAG-level parameters, available to every run of the DAG (overridable at submit). */
  params: z.record(z.string(), ParamValueSchema).optional(),
  /** `failFast`: the first node failing for good fails the run; `continue`: independent branches go on. */
  failurePolicy: z.enum(["failFast", "continue"]).default("failFast"),
  /** A node's cluster lost (no heartbeat for the grace period): wait, retry elsewhere, or fail. */
  onClusterLost: ClusterLostSchema.optional(),
  /** MLflow experiment of the runs; `validateDag` fills in the DAG name when it is absent. */
  experiment: nonEmpty().optional(),
  /** Caching for every node that does not set its own `cache`. */
  cache: CacheSchema.optional(),
  nodes: z
    .array(DagNodeSchema)
    .min(1, { error: "a DAG needs at least one node" })
    .max(MAX_NODES, { error: (iss) => `at most ${MAX_NODES} nodes are allowed, got ${(iss.input as unknown[]).length}` }),
});

/** A DAG after parsing (defaults applied). */
export type Dag = z.output<typeof DagSchema>;
/** A DAG as written by a person or sent to the API (defaults optional). */
export type DagInput = z.input<typeof DagSchema>;
export type DagNode = z.output<typeof DagNodeSchema>;
export type InputRef = z.output<typeof InputRefSchema>;
export type Partition = z.output<typeof PartitionSchema>;
export type ClusterSelector = z.output<typeof ClusterSelectorSchema>;
export type Resources = z.output<typeof ResourcesSchema>;
export type Toleration = z.output<typeof TolerationSchema>;
export type Window = z.output<typeof WindowSchema>;
export type CacheSetting = z.output<typeof CacheSchema>;
export type FailurePolicy = Dag["failurePolicy"];
export type ClusterLost = z.output<typeof ClusterLostSchema>;
