/**
 * @module
 * Everything before an attempt's first process: the project (fetched, entry point loaded), the
 * MLflow runs (experiment, the DAG run's parent, the node attempt's run), the inputs, the rendered
 * command, the partition manifest and the steps' environment — then the attempt is `running`,
 * durably, and reported so. Each step is saved in the record, so a retried preparation (MLflow
 * was down) finds the MLflow runs again instead of making new ones.
 */
import { existsSync } from "node:fs";
import { chown, mkdir, realpath, rm, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { IMAGE_UID } from "../../../../../proto/images";
import { MLFLOW_TAGS } from "../../../../../proto/mlflow";
import { checkParameters, isMLprojectError, resolveCommand } from "../../../../../proto/mlproject";
import { cachePolicy, unpinnedCacheWarning } from "../../../../../proto/dag";
import { nodeCacheKey, recordCacheHit } from "../../shared/cache";
import { ensureStepImage, gitSourceOf, planStepImage } from "../../shared/images";
import { dockerEnvVariables } from "../containers";
import { downloadInputs, listFiles } from "../../shared/artifacts";
import { AttemptFailure, asFailure, errMessage } from "../../shared/errors";
import { computeManifest, itemsOf, type Manifest } from "../../shared/manifest";
import { METADATA_DIR } from "../../shared/metadata";
import { partitionInputMetadata } from "../../shared/metadata-store";
import { hasPartitionRuns } from "../../shared/partition-runs";
import { MANIFEST_ARTIFACT, previousManifest, retryPlan, retryTags } from "../../shared/partitions";
import { experimentFor, findOrCreateNodeRun, forgetExperiment, parentRunFor } from "../../shared/mlflow-runs";
import { copyUnderRoot, isUnder, realRoot, resolveUnderRoot } from "../../shared/paths";
import { type FetchedProject, fetchProject, isGitUri, loadEntryPoint } from "../../shared/project";
import { emptyWindowSkip, windowTags } from "../../shared/windows";
import { partitionCounts, type AttemptRecord } from "../state";
import type { AttemptScope } from "./scope";

/** A cancel came while preparing: stop here (the attempt ends `cancelled`). */
class Cancelled extends Error {}

/**
 * Prepares the attempt and marks it `running` (reported with its counters and any parameter
 * warnings) — or, for a caching node whose key the control plane knows, resolves `"cached"`
 * without running anything (the caller ends it `succeeded`). Rejects when it cannot go on: see
 * {@link endOfFailedPreparation} for what then.
 */
export async function prepareAttempt(a: AttemptScope): Promise<"cached" | undefined> {
  const { ctx, rec } = a;
  const work = rec.work!;
  const node = work.node;
  checkStop(rec);
  const fetched = await fetchProject(node.project, { projectsRoot: ctx.projectsRoot, gitCacheDir: ctx.gitCacheDir, gitBin: ctx.gitBin });
  const launcherEnv = ctx.baseEnv as Record<string, string | undefined>;
  const loaded = await loadEntryPoint(fetched.dir, node.entryPoint, node.parameters, launcherEnv, ctx.containers ? "in-containers" : "local");
  rec.project = { ...fetched, entryPoint: node.entryPoint, params: loaded.params };
  // --containers: the image is named before anything is built (the node's MLflow run names it).
  const images = ctx.containers ? await planStepImage(ctx.containers, fetched.dir, gitSourceOf(fetched)) : undefined;
  if (images) {
    rec.project.image = images.plan.ref;
    rec.containerEnv = dockerEnvVariables(images.project.dockerEnv, launcherEnv);
    rec.containerVolumes = [...(images.project.dockerEnv?.volumes ?? [])];
  }
  await a.save();

  // MLflow: experiment, parent, the node attempt's run (found again by tag on a retry).
  checkStop(rec);
  if (!rec.mlflow?.nodeRunId) {
    const experimentName = work.experiment || work.dag.name;
    const experimentId = await experimentFor(ctx.mlflow, experimentName);
    try {
      // The DAG run is running while any attempt of it does; only the control plane ends it (runEnded).
      const parentRunId = work.mlflowParentRunId ?? (await parentRunFor(ctx.mlflow, experimentId, work));
      rec.mlflow = { experimentId, parentRunId };
      rec.mlflow.nodeRunId = await findOrCreateNodeRun(ctx.mlflow, experimentId, parentRunId, work, rec.project);
    } catch (e) {
      forgetExperiment(ctx.mlflow, experimentName); // deleted or renamed meanwhile? The next try looks again.
      throw e;
    }
    await a.save();
  }
  const { experimentId, parentRunId, nodeRunId } = rec.mlflow as Required<NonNullable<AttemptRecord["mlflow"]>>;

  // --containers: the image, found where images are kept or built once (the node is `building` meanwhile).
  if (ctx.containers && images && !rec.image) {
    checkStop(rec);
    const ensured = await ensureStepImage({ images: ctx.containers, plan: images.plan, mlflow: ctx.mlflow, nodeRunId, report: (e) => a.report(e), warn: (o, m) => ctx.log.warn(a.logCtx(o), m) });
    await ctx.mlflow.setTag(nodeRunId, MLFLOW_TAGS.dockerImageId, ensured.digest);
    rec.image = ensured.ref;
    await a.save();
  }

  // Inputs (downloaded afresh: a retried preparation starts from an empty folder).
  checkStop(rec);
  const inputsDir = join(rec.dir, "inputs");
  const outputsDir = join(rec.dir, "outputs");
  await rm(inputsDir, { recursive: true, force: true });
  // A partition retry: the manifest of the attempt before says which items its partitions own,
  // and only those of the partitioned input are fetched again (at 10,000 items, copying them all
  // was most of a retry's time) — as each pod fetches only its own on Kubernetes. Not for a
  // windowed input (its count decides an empty window) nor a caching node (its key hashes the inputs).
  const retrying = retryPlan(work);
  const previous = retrying && node.partition ? await previousManifest(ctx.mlflow, retrying) : undefined;
  const input = node.partition?.input;
  const only = retrying && previous && input !== undefined && !work.windows?.[input] && !cachePolicy(node.cache) ? { input, files: itemsOf(previous, retrying.indexes) } : undefined;
  const kept = await downloadInputs({ mlflow: ctx.mlflow, experimentId, parentRunId, projectsRoot: ctx.projectsRoot, upstreamRuns: work.upstreamRuns }, node.inputs, inputsDir, work.windows, only);
  // What each windowed input covered, on the node's run (the run view has it too, as `windows`).
  if (work.windows) await ctx.mlflow.setTags(nodeRunId, windowTags(work.windows));
  // Nothing arrived in the windows: the node succeeds at once, with no partition (and no output,
  // so a downstream `{node}` input is an empty folder). Decided afresh on each attempt.
  const skipped = emptyWindowSkip(work.windows, kept);
  if (skipped) rec.skipped = skipped;
  else delete rec.skipped;
  // A caching node: with its inputs here, its key is known; a hit ends the attempt now.
  if (!skipped && (await cacheHit(a, fetched, inputsDir, nodeRunId))) return "cached";
  await mkdir(outputsDir, { recursive: true });
  // The image's user writes the outputs (podman as root keeps the image's user; rootless maps ours).
  if (ctx.containers && process.getuid?.() === 0) await chown(outputsDir, IMAGE_UID, IMAGE_UID);

  // The command, with `path` parameters resolved against the attempt folder (so a relative
  // path such as `inputs/corpus` names the downloaded input).
  checkStop(rec);
  try {
    rec.command = await resolveCommand(loaded.entryPoint, node.parameters ?? {}, {
      cwd: rec.dir,
      runStorageDir: join(rec.dir, "params"),
      // A local path value is handed to the step as it is, but only one below the projects root
      // (or the attempt's own folder, where `inputs/…` are) passes.
      exists: (p) => localPathParamExists(p, ctx.projectsRoot, rec.dir),
      download: (uri, dest) => downloadPathParam(uri, dest, ctx.projectsRoot),
    });
  } catch (e) {
    if (isMLprojectError(e)) throw new AttemptFailure(e.message, { cause: e });
    throw e;
  }
  // MLflow passes a declared float/int that is not a number through unchecked, and so do we;
  // but we say so (node message, MLflow tag, log), since the step will likely fail on it.
  let paramWarnings: string | undefined;
  const warnings = checkParameters(loaded.entryPoint, node.parameters ?? {}).map((w) => w.message);
  if (warnings.length > 0) {
    paramWarnings = `parameter warnings: ${warnings.join("; ")}`.slice(0, 4000);
    await ctx.mlflow.setTag(nodeRunId, "parallels.warnings", paramWarnings);
    ctx.log.warn(a.logCtx({ warnings }), "the node's parameters do not match the entry point's declared types");
  }
  if (rec.cacheWarning) paramWarnings = [rec.cacheWarning, paramWarnings].filter(Boolean).join("; ").slice(0, 4000);

  // The manifest: once per attempt, stored as an artifact of the node's run. A partition retry
  // (`work.retry`) takes the manifest of the attempt before, so an index names the same files,
  // and runs only the partitions it names; the others' outputs stay on the runs before
  // (`parallels.outputsFrom`, see shared/partitions.ts).
  const plan = skipped ? undefined : retrying;
  let manifest: Manifest;
  if (skipped) manifest = { ...computeManifest(node.partition, node.parallelism, []), count: 0, partitions: [] };
  else if (plan && previous) manifest = previous;
  else {
    if (work.retry) ctx.log.warn(a.logCtx({ retry: work.retry }), "a retry of some partitions, but the manifest of the attempt before is not there: running every partition");
    const partitionInput = node.partition?.input;
    const files = partitionInput === undefined ? [] : await listFiles(join(inputsDir, partitionInput));
    // The items' metadata, from the sidecars stored with the runs the input came from.
    const metadata =
      partitionInput === undefined ? undefined : await partitionInputMetadata(ctx.mlflow, { experimentId, parentRunId, upstreamRuns: work.upstreamRuns }, node.inputs?.[partitionInput], files);
    manifest = computeManifest(node.partition, node.parallelism, files, metadata);
  }
  rec.manifest = manifest;
  // Nested runs up to the limit, else the partitions table (one rule for both executors).
  rec.partitionRuns = hasPartitionRuns(manifest, ctx.maxPartitionRuns);
  if (manifest.nested) {
    // Where the partitions write their metadata sidecars (PARALLELS_METADATA_FILE), one each.
    await mkdir(join(outputsDir, METADATA_DIR), { recursive: true });
    if (ctx.containers && process.getuid?.() === 0) await chown(join(outputsDir, METADATA_DIR), IMAGE_UID, IMAGE_UID);
  }
  if (node.partition) {
    await ctx.mlflow.uploadArtifact(nodeRunId, MANIFEST_ARTIFACT, JSON.stringify(manifest, null, 1), "application/json");
  }
  if (plan && previous) {
    rec.partitions = plan.indexes.map((index) => ({ index, state: "pending" }));
    rec.retry = { total: plan.total, doneBefore: plan.doneBefore };
    await ctx.mlflow.setTags(nodeRunId, retryTags(plan));
  } else {
    rec.partitions = manifest.partitions.map((p) => ({ index: p.index, state: "pending" }));
  }
  rec.env = {
    ...node.env,
    MLFLOW_TRACKING_URI: ctx.trackingUri,
    MLFLOW_EXPERIMENT_ID: experimentId,
    PARALLELS_INPUTS_DIR: inputsDir,
    PARALLELS_OUTPUTS_DIR: outputsDir,
  };
  checkStop(rec);
  rec.phase = "running";
  await a.save();
  const runningMessage = skipped ?? ([paramWarnings, parallelismCap(node.parallelism, rec.partitions.length, ctx.slots.max)].filter(Boolean).join("; ") || undefined);
  a.report({ type: "running", counts: partitionCounts(rec), ...(runningMessage ? { message: runningMessage } : {}) });
  rec.runningReported = true;
  await a.save();
  ctx.log.info(a.logCtx({ mlflowRunId: nodeRunId, partitions: manifest.count, ...(rec.retry ? { retrying: rec.partitions.length } : {}), ...(skipped ? { skipped } : {}) }), "attempt started");
  return undefined;
}

/**
 * For a caching node: computes its key, asks the control plane (which keeps the key with the node
 * run, so a success now is a hit later) and, on a hit, tags the node's MLflow run with where its
 * result is. A retried preparation asks again (the same key, the same answer). A lookup that
 * fails (control plane unreachable) is a miss: the step runs — slower, never wrong.
 */
async function cacheHit(a: AttemptScope, fetched: FetchedProject, inputsDir: string, mlflowRunId: string): Promise<boolean> {
  const { ctx, rec } = a;
  const work = rec.work!;
  if (rec.cachedFrom) return true;
  if (!cachePolicy(work.node.cache) || !ctx.cacheLookup) return false;
  rec.cacheWarning = unpinnedCacheWarning(work.node.project, fetched.git !== undefined || isGitUri(work.node.project.uri) || work.node.project.version !== undefined, fetched.gitCommit);
  const key = await nodeCacheKey({ work, fetched, image: rec.image ?? rec.project?.image ?? null, inputsDir });
  let hit: Awaited<ReturnType<NonNullable<typeof ctx.cacheLookup>>>;
  try {
    hit = await ctx.cacheLookup({ nodeRunId: work.nodeRunId, attempt: work.attempt, key });
  } catch (e) {
    ctx.log.warn(a.logCtx({ err: e }), "the cache lookup failed: running the step");
    return false;
  }
  await ctx.mlflow.setTag(mlflowRunId, "parallels.cacheKey", key);
  if (!hit) return false;
  const from = { runId: hit.runId, nodeRunId: hit.nodeRunId, mlflowRunId: hit.mlflowRunId };
  await recordCacheHit(ctx.mlflow, mlflowRunId, from, key);
  if (rec.cacheWarning) await ctx.mlflow.setTag(mlflowRunId, "parallels.warnings", rec.cacheWarning);
  rec.cachedFrom = from;
  await a.save();
  ctx.log.info(a.logCtx({ cachedFrom: from }), "cache hit: no step runs");
  return true;
}

/**
 * How an attempt whose preparation rejected with `e` ends: `cancelled` (a cancel came, also
 * while preparation was failing for another reason), `failed` with the failure (the work itself
 * is wrong, or the core gave up on starting it), or undefined: retry the preparation later.
 */
export function endOfFailedPreparation(rec: AttemptRecord, e: unknown): "cancelled" | AttemptFailure | undefined {
  if (e instanceof Cancelled || rec.cancelRequested === true) return "cancelled";
  return asFailure(e) ?? (rec.failRequested !== undefined ? new AttemptFailure(rec.failRequested, { cause: e }) : undefined);
}

/** Between steps: a cancel or the core giving up stops the preparation. */
function checkStop(rec: AttemptRecord): void {
  if (rec.cancelRequested) throw new Cancelled();
  if (rec.failRequested !== undefined) throw new AttemptFailure(rec.failRequested);
}

/** `path` parameters with a URI: only local files below the projects root are supported here. */
async function downloadPathParam(uri: string, dest: string, projectsRoot: string): Promise<string> {
  if (!uri.startsWith("file:")) {
    throw new AttemptFailure(`path parameter ${uri}: only local paths and file:// URIs are supported by the local executor`);
  }
  let src: string;
  try {
    src = fileURLToPath(uri);
  } catch (e) {
    throw new AttemptFailure(`path parameter ${uri}: ${errMessage(e)}`);
  }
  const real = await resolveUnderRoot(projectsRoot, src, `path parameter ${uri}`, "file-or-dir");
  await mkdir(dest, { recursive: true });
  const target = join(dest, basename(src));
  await copyUnderRoot(projectsRoot, real, target, `path parameter ${uri}`);
  return target;
}

/** The engine's `os.path.exists` for local `path` values (also `file:` ones): only below the projects root or the attempt folder. */
async function localPathParamExists(abs: string, projectsRoot: string, attemptDir: string): Promise<boolean> {
  if (!existsSync(abs)) return false;
  const real = await realpath(abs);
  if (!isUnder(realRoot(projectsRoot), real) && !isUnder(realRoot(attemptDir), real)) {
    throw new AttemptFailure(`path parameter ${abs} is outside the projects root ${projectsRoot}; the local executor reads local paths only below --projects-root`);
  }
  const s = await stat(real);
  if (!s.isFile() && !s.isDirectory()) throw new AttemptFailure(`path parameter ${abs} is not a regular file or folder`);
  return true;
}

/**
 * Said in the `running` message when the agent's process slots (`--max-processes`, shared by
 * every attempt) hold fewer processes than the node may run at once, so a user who set
 * `parallelism: 10` knows why five run. Nothing when the node has no more partitions than slots.
 */
export function parallelismCap(parallelism: number, partitions: number, slots: number): string | undefined {
  const wanted = Math.min(parallelism, partitions);
  if (wanted <= slots) return undefined;
  return `parallelism ${parallelism} capped to ${slots}: this agent runs at most ${slots} step processes at once (--max-processes)`;
}
