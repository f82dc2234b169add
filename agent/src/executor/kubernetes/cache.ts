/**
 * @module
 * Execution caching on Kubernetes: the same key and lookup as the local executor
 * (`shared/cache.ts`, rules in `proto/dag/cache.ts`), asked before the attempt makes a Job, so a
 * hit runs no pod. The key needs every input file's SHA-256, which only
 * the files themselves give (MLflow lists sizes, not digests): for a caching node the agent
 * downloads its inputs once into a folder of its state dir, digests them as the local executor
 * does, and removes them — the same key for the same files on either executor. Nodes that do
 * not cache download nothing here.
 */
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { cachePolicy, unpinnedCacheWarning } from "../../../../proto/dag";
import type { WorkStart } from "../../../../proto/messages";
import { type CachedFrom, CACHE_TAGS, nodeCacheKey, recordCacheHit } from "../shared/cache";
import { downloadSourceFiles, type InputSource, listSource } from "../shared/inputs";
import type { FetchedProject } from "../shared/project";
import type { KubernetesContext } from "./context";

export interface CacheHit {
  from: CachedFrom;
  /** Why the key may surprise (a branch's commit at dispatch), for the node's message. */
  warning?: string;
}

/**
 * For a caching node: the key, asked of the control plane (which keeps it with the node run, so a
 * success now is a hit later); on a hit the node's MLflow run is tagged with where its result is.
 * A lookup that fails is a miss: the step runs — slower, never wrong. A redelivered start asks
 * again and gets the same answer.
 */
export async function cacheHitOf(
  k: KubernetesContext,
  work: WorkStart,
  o: { fetched: FetchedProject; image: string; sources: Record<string, InputSource>; nodeRunId: string },
): Promise<CacheHit | null> {
  const lookup = k.o.cacheLookup;
  if (!cachePolicy(work.node.cache) || !lookup) return null;
  const warning = unpinnedCacheWarning(work.node.project, true, o.fetched.gitCommit);
  const inputsDir = join(k.o.stateDir, "cache-inputs", `${work.nodeRunId}.${work.attempt}`);
  let key: string;
  try {
    await rm(inputsDir, { recursive: true, force: true });
    await mkdir(inputsDir, { recursive: true });
    for (const [name, src] of Object.entries(o.sources)) await downloadSourceFiles(k.o.mlflow, src, await listSource(k.o.mlflow, src), join(inputsDir, name));
    key = await nodeCacheKey({ work, fetched: o.fetched, image: o.image, inputsDir });
  } finally {
    await rm(inputsDir, { recursive: true, force: true });
  }
  let hit: Awaited<ReturnType<typeof lookup>>;
  try {
    hit = await lookup({ nodeRunId: work.nodeRunId, attempt: work.attempt, key });
  } catch (e) {
    k.o.logger.warn({ err: (e as Error).message, nodeRunId: work.nodeRunId }, "the cache lookup failed: running the step");
    return null;
  }
  await k.o.mlflow.setTag(o.nodeRunId, CACHE_TAGS.cacheKey, key);
  if (!hit) return null;
  const from: CachedFrom = { runId: hit.runId, nodeRunId: hit.nodeRunId, mlflowRunId: hit.mlflowRunId };
  await recordCacheHit(k.o.mlflow, o.nodeRunId, from, key);
  if (warning) await k.o.mlflow.setTag(o.nodeRunId, "parallels.warnings", warning);
  k.o.logger.info({ nodeRunId: work.nodeRunId, cachedFrom: from }, "cache hit: no Job");
  return { from, ...(warning ? { warning } : {}) };
}
