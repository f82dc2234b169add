/**
 * @module
 * The agent's side of execution caching (rules: `proto/dag/cache.ts`). Once an attempt's inputs
 * are downloaded, the agent knows everything that decides the node's result: the project as
 * fetched (its commit, or for a local folder used in place its files), the entry point, the
 * resolved parameters and env, the image, and the input files themselves. It makes the key from
 * those and asks the control plane (`POST /v1/agent/cache`); on a hit the node's MLflow run is
 * tagged with where its result is, and no step runs.
 *
 * The hit's outputs are not copied: the node's run carries `parallels.outputsFrom` = the hit's
 * MLflow run, which a dependant's input lookup follows (`artifacts.ts` `upstreamRunIds`), as it
 * does for a partition retry.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { cacheKey, type InputDigest } from "../../../../proto/dag";
import type { WorkStart } from "../../../../proto/messages";
import type { MlflowClient } from "../../../../proto/mlflow";
import { listFiles } from "./artifacts";
import type { FetchedProject } from "./project";
import { REUSED_TAGS } from "./reused-runs";

export const CACHE_TAGS = Object.freeze({ cachedFrom: "parallels.cachedFrom", cacheKey: "parallels.cacheKey" } as const);

/** A hit as the agent keeps it (its record, the `succeeded` event). */
export interface CachedFrom {
  runId: string;
  nodeRunId: string;
  mlflowRunId: string;
}

/** SHA-256 (hex) of a file, streamed. */
export function fileSha256(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash("sha256");
    createReadStream(path)
      .on("data", (chunk) => h.update(chunk))
      .on("error", reject)
      .on("end", () => resolve(h.digest("hex")));
  });
}

/** Every file below `dir`: path, size, SHA-256. `skip`: top-level-or-deeper folder names left out (`.git`). */
export async function folderDigests(dir: string, skip: ReadonlySet<string> = new Set()): Promise<InputDigest[]> {
  const files = (await listFiles(dir)).filter((rel) => !rel.split("/").some((part) => skip.has(part)));
  const out: InputDigest[] = [];
  for (const rel of files) {
    const abs = join(dir, ...rel.split("/"));
    const { size } = await stat(abs);
    out.push({ path: rel, size, sha256: await fileSha256(abs) });
  }
  return out;
}

/** Folders of a local project that are not the project: git's own, Python's byte code. */
const NOT_THE_PROJECT = new Set([".git", "__pycache__"]);

/**
 * What names the project in the key: a checkout (a git URL, or a local repository at a `version`)
 * is its commit; a local folder used in place is its files' digest — it may have changes no
 * commit holds.
 */
export async function projectIdentity(fetched: FetchedProject, project: WorkStart["node"]["project"]): Promise<string> {
  const checkout = fetched.git !== undefined || project.version !== undefined;
  // The URI (with its #subdir) and subdirectory say which folder of the commit. Only the digest leaves the agent.
  if (checkout && fetched.gitCommit) return `git:${fetched.gitCommit} ${project.uri} ${project.subdirectory ?? ""}`;
  const files = await folderDigests(fetched.dir, NOT_THE_PROJECT);
  return `content:${createHash("sha256").update(JSON.stringify(files)).digest("hex")}`;
}

/** The node's cache key, from the prepared attempt. */
export async function nodeCacheKey(o: { work: WorkStart; fetched: FetchedProject; image: string | null; inputsDir: string }): Promise<string> {
  const node = o.work.node;
  return cacheKey({
    project: await projectIdentity(o.fetched, node.project),
    entryPoint: node.entryPoint,
    parameters: node.parameters ?? {},
    env: node.env ?? {},
    image: o.image,
    inputs: await folderDigests(o.inputsDir),
  });
}

/** Tags the node's MLflow run with where its result is (the run ends FINISHED as any success). */
export async function recordCacheHit(mlflow: MlflowClient, nodeMlflowRunId: string, hit: CachedFrom, key: string): Promise<void> {
  await mlflow.setTags(nodeMlflowRunId, {
    [CACHE_TAGS.cachedFrom]: `${hit.runId}/${hit.nodeRunId}`,
    [CACHE_TAGS.cacheKey]: key,
    [REUSED_TAGS.outputsFrom]: hit.mlflowRunId,
  });
}
