/**
 * @module
 * Execution caching (a node's or the DAG's `cache`): the rules, pure and runtime-free, in one home
 * for the control plane (which hit is acceptable), the agent (the key, the warning) and the tests.
 *
 * - The **key** is a SHA-256 over a canonical JSON of what decides a node's result: the project
 *   (a git commit; a local folder used in place: a digest of its files), the entry point, the
 *   resolved parameters and env, the image (where it runs in one) and the contents of its inputs
 *   (each input file's path, size and SHA-256 as downloaded). An upstream node whose result
 *   changed changes the files its dependants download, hence their keys: a cached node never has
 *   an ancestor whose result differs from the one its hit was made from (property test beside).
 * - A **hit** is a `succeeded` node run of the same workspace with that key, ended within
 *   `maxAge` (no `maxAge`: any age). Only a node run that really ran is a hit (not a `cached` or
 *   `reused` one), so `maxAge` counts from when the result was made.
 * - The node's `cache` wins over the DAG's (`false` opts out of a DAG-wide `true`).
 */
import { durationMs } from "./windows";
import type { CacheSetting, Dag, DagNode } from "./schema";

/** A node's caching, resolved: null when it does not cache. */
export interface CachePolicy {
  /** A hit must have ended at most this long ago; null: any age. */
  maxAgeMs: number | null;
}

/** The `cache` that applies to `node` (its own, else the DAG's); undefined: none. */
export function effectiveCache(dag: Pick<Dag, "cache">, node: Pick<DagNode, "cache">): CacheSetting | undefined {
  return node.cache ?? dag.cache;
}

/** The policy of a `cache` setting; null: the node does not cache. */
export function cachePolicy(setting: CacheSetting | undefined): CachePolicy | null {
  if (setting === undefined || setting === false) return null;
  return { maxAgeMs: setting === true ? null : durationMs(setting.maxAge) };
}

/** What the control plane knows of a candidate hit. */
export interface CacheCandidate {
  status: string;
  /** When it ended (epoch ms); null: not ended. */
  finishedAt: number | null;
}

/** Whether `candidate` may stand for the node now: it succeeded (it ran: not `cached`/`reused`), within `maxAge`. */
export function acceptHit(candidate: CacheCandidate | null | undefined, policy: CachePolicy | null, now: number): boolean {
  if (!policy || !candidate || candidate.status !== "succeeded" || candidate.finishedAt === null) return false;
  return policy.maxAgeMs === null || now - candidate.finishedAt <= policy.maxAgeMs;
}

/** One input file as the step sees it: its path below the inputs folder, size and SHA-256 (hex). */
export interface InputDigest {
  path: string;
  size: number;
  sha256: string;
}

/** What decides a node's result: the key is a digest of exactly this. */
export interface CacheKeyParts {
  /** `git:<commit>[#subdir]`, or `content:<sha256 of the folder's files>` for a local folder used in place. */
  project: string;
  entryPoint: string;
  /** Resolved (`${params.…}` filled in). */
  parameters: Readonly<Record<string, unknown>>;
  env: Readonly<Record<string, string>>;
  /** The image it runs in (digest where known, else the reference); null: the agent's own environment. */
  image: string | null;
  inputs: readonly InputDigest[];
}

/** Key format version: bump when what goes in changes, so old keys stop matching. */
const KEY_VERSION = 1;

/** The cache key of `parts`: `v1:<sha256 hex>`. Independent of object key order and of the order of `inputs`. */
export async function cacheKey(parts: CacheKeyParts): Promise<string> {
  const inputs = [...parts.inputs].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const text = canonicalJson({ ...parts, inputs, v: KEY_VERSION });
  return `v${KEY_VERSION}:${await sha256Hex(text)}`;
}

/** JSON with object keys sorted at every depth (arrays keep their order). */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}

export async function sha256Hex(data: string | Uint8Array): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A full commit id (SHA-1 or SHA-256 git): anything else names a branch or tag, which can move. */
export const isCommitId = (version: string | undefined): boolean => version !== undefined && /^([0-9a-f]{40}|[0-9a-f]{64})$/.test(version);

/**
 * The warning a caching node gets when its project is a git repository at a branch or tag (or its
 * default branch): its key uses the commit the branch had when the node was dispatched, so a later
 * push is a new key, but two runs dispatched before and after a force-push back are the same.
 */
export function unpinnedCacheWarning(project: DagNode["project"], isGit: boolean, commit: string | undefined): string | undefined {
  if (!isGit || isCommitId(project.version)) return undefined;
  const at = project.version ? `branch or tag '${project.version}'` : "its default branch";
  return `cache: the project is a git repository at ${at}, not a commit id; the cache key uses the commit it had at dispatch (${commit ?? "unknown"})`;
}
