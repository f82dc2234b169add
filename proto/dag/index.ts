/**
 * @module
 * The DAG model shared by every part of MLflow Parallels: zod schemas, limits, validation with
 * readable problems, and graph helpers. Runtime-free (workerd, Node, browsers).
 *
 * @example
 * ```ts
 * import { parseDagText } from "../proto/dag";
 * const result = parseDagText(yamlText, "yaml");
 * if (!result.ok) for (const p of result.problems) console.log(`${p.path}: ${p.message}`);
 * ```
 */
export {
  DagSchema,
  DagNodeSchema,
  ProjectSchema,
  InputRefSchema,
  PartitionSchema,
  ClusterSelectorSchema,
  ResourcesSchema,
  NodeSelectorSchema,
  TolerationSchema,
  IMAGE_REF,
  MAX_NODES,
  MAX_PARALLELISM,
  MAX_DAG_BYTES,
  MAX_RETRIES,
  DNS_LABEL,
} from "./schema";
export type {
  Dag,
  DagInput,
  DagNode,
  InputRef,
  Partition,
  ClusterSelector,
  Resources,
  Toleration,
  FailurePolicy,
  ClusterLost,
} from "./schema";
export { clusterLostPolicy, DEFAULT_CLUSTER_LOST } from "./cluster-lost";
export type { ClusterLostPolicy, ClusterLostPolicyName } from "./cluster-lost";
export type { Problem } from "./problems";
/** For validating other bodies with the same messages: `schema.safeParse(v, { error: dagErrorMap })`. */
export { dagErrorMap, issuesToProblems, formatPath } from "./problems";
export { validateDag, parseDagText, parseText } from "./validate";
export type { ValidationResult } from "./validate";
export {
  upstreamOf,
  downstreamOf,
  topologicalOrder,
  findCycles,
  graphOf,
  topologicalIndices,
  concurrency,
  DagCycleError,
} from "./graph";
export type { DagGraph } from "./graph";
export { paramReferences, substituteParams, resolveNodeParams } from "./params";
export { resolveWindows, nodeWindows, needsPreviousWindows, durationMs, windowKey, windowRefusal } from "./windows";
export type { ResolvedWindow, RunWindows } from "./windows";
export { CacheSchema } from "./schema";
export type { CacheSetting } from "./schema";
export { effectiveCache, cachePolicy, acceptHit, cacheKey, canonicalJson, sha256Hex, isCommitId, unpinnedCacheWarning } from "./cache";
export type { CachePolicy, CacheCandidate, CacheKeyParts, InputDigest } from "./cache";
