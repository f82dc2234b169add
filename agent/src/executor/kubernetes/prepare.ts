/**
 * @module
 * Everything the agent does before it makes a node attempt's Job: the project (cloned here to
 * read its MLproject and pin its commit; the pods clone that commit), the step's image, the
 * MLflow runs (experiment, the DAG run's parent, the node attempt's run, a nested run per
 * partition up to a limit), the command, one listing of the inputs and the partition manifest
 * (artifacts of the node's run), and the Job itself. Idempotent: a redelivered start finds the
 * same MLflow runs by tag and the same Job name. A partition retry (`WorkStart.retry`) is prepared
 * as on the local executor (shared/partitions.ts): the manifest of the attempt before, the tags,
 * nested runs of the partitions it runs only, and a Job of just those (Job index i → `ran[i]`).
 */
import type { V1Job } from "@kubernetes/client-node";
import type { WorkStart } from "../../../../proto/messages";
import { checkParameters, isMLprojectError, resolveCommand } from "../../../../proto/mlproject";
import { mapLimit } from "../shared/artifacts";
import { AttemptFailure } from "../shared/errors";
import { listSource, resolveInputSources } from "../shared/inputs";
import { emptyWindowSkip, windowTags } from "../shared/windows";
import { previousManifest, retryPlan, retryTags } from "../shared/partitions";
import { computeManifest, type Manifest } from "../shared/manifest";
import { hasPartitionRuns } from "../shared/partition-runs";
import { sourceMetadata } from "../shared/metadata-store";
import { endRun, experimentFor, findOrCreateNodeRun, findOrCreatePartitionRun, forgetExperiment, parentRunFor } from "../shared/mlflow-runs";
import { fetchProject, isGitUri, loadEntryPoint, type ProjectInfo } from "../shared/project";
import { ensureStepImage, gitSourceOf, planStepImage } from "../shared/images";
import { PROJECT_DIR } from "../../../../proto/images";
import { MLFLOW_TAGS } from "../../../../proto/mlflow";
import type { AttemptReport } from "../types";
import { podsThatFit } from "./capacity";
import { buildJob } from "./job-spec";
import { ANNOTATIONS, jobName, workLabels } from "./names";
import { NODE_ARTIFACTS, POD_ATTEMPT_VERSION, type PodAttempt } from "./pod-attempt";
import { POD_DIR } from "./pod-layout";
import { type CacheHit, cacheHitOf } from "./cache";
import type { KubernetesContext } from "./context";
import { JOB_RECORD_VERSION, type JobRecord } from "./record";

export interface PreparedAttempt {
  /** The Job to create, or null when the partitioned input is empty or the cache has the result (nothing to run: the attempt succeeds). */
  job: V1Job | null;
  /** A cache hit: the node run whose result this attempt's is (cache.ts). */
  cached?: CacheHit;
  record: JobRecord;
  /** Said in the `running` event: parameter warnings, a capped parallelism. */
  notes: string[];
}

/** A `path` parameter: on a cluster, a relative value names a file of the step's inputs (`inputs/<name>/…`). */
function podPathExists(abs: string, inputs: readonly string[]): boolean {
  if (!abs.startsWith(`${POD_DIR}/`)) return true; // an absolute path of the image: the step's own business
  return inputs.some((name) => abs === `${POD_DIR}/inputs/${name}` || abs.startsWith(`${POD_DIR}/inputs/${name}/`));
}

export async function prepareAttempt(k: KubernetesContext, work: WorkStart, report?: (event: AttemptReport) => void): Promise<PreparedAttempt> {
  const { o } = k;
  const node = work.node;
  const base = node.project.uri.split("#")[0]!;
  if (!isGitUri(base)) {
    throw new AttemptFailure(`the project ${node.project.uri} is a local path: on a Kubernetes cluster a project comes from a git repository (push it, or run this node on the local executor)`);
  }
  const fetched = await fetchProject(node.project, { projectsRoot: o.projectsRoot ?? o.stateDir, gitCacheDir: `${o.stateDir}/git`, ...(o.gitBin ? { gitBin: o.gitBin } : {}) });
  if (!fetched.git || !fetched.gitCommit) {
    // A repository on this machine given without a version is read in place (as `mlflow run` does): no commit to pin.
    throw new AttemptFailure(`the project ${node.project.uri} was read in place, not cloned: on a Kubernetes cluster give a git repository the pods can clone, with a version`);
  }
  const loaded = await loadEntryPoint(fetched.dir, node.entryPoint, node.parameters, process.env, "in-containers");
  // The node's own image, else the one built from the project (named now; built, if missing, once the node's run exists).
  const images = !node.image && o.images ? await planStepImage(o.images, fetched.dir, gitSourceOf(fetched)) : undefined;
  let image = node.image ?? images?.plan.ref ?? loaded.dockerImage;
  if (!image) {
    throw new AttemptFailure(
      `the project has no docker_env and the node no image, and this cluster builds no images (the chart's images.registry is not set): set the node's \`image:\` (an image with the project's Python environment), a docker_env in its MLproject, or the cluster's image registry`,
    );
  }
  const project: ProjectInfo = { ...fetched, entryPoint: node.entryPoint, params: loaded.params, backend: "kubernetes", image };

  // MLflow: found again by tag when a start is delivered twice.
  const experimentName = work.experiment || work.dag.name;
  const experimentId = await experimentFor(o.mlflow, experimentName);
  let parentRunId: string;
  let nodeRunId: string;
  try {
    parentRunId = work.mlflowParentRunId ?? (await parentRunFor(o.mlflow, experimentId, work));
    nodeRunId = await findOrCreateNodeRun(o.mlflow, experimentId, parentRunId, work, project);
  } catch (e) {
    forgetExperiment(o.mlflow, experimentName); // deleted or renamed meanwhile? The next try looks again.
    throw e;
  }

  if (images && o.images) {
    // Found in the registry, or built by a Job in the cluster while the node is `building`.
    const ensured = await ensureStepImage({
      images: o.images,
      plan: images.plan,
      mlflow: o.mlflow,
      nodeRunId,
      report: (e) => report?.({ ...e, mlflowRunId: nodeRunId, mlflowParentRunId: parentRunId }),
      warn: (obj, msg) => o.logger.warn(obj, msg),
    }).catch(async (e: unknown) => {
      // A failed build ends the attempt: its MLflow run too.
      if (e instanceof AttemptFailure) await endRun(o.mlflow, nodeRunId, "FAILED", Date.now()).catch(() => undefined);
      throw e;
    });
    image = ensured.ref;
    await o.mlflow.setTag(nodeRunId, MLFLOW_TAGS.dockerImageId, ensured.digest);
  }

  const inputNames = Object.keys(node.inputs ?? {});
  let command: string;
  try {
    command = await resolveCommand(loaded.entryPoint, node.parameters ?? {}, {
      cwd: POD_DIR,
      runStorageDir: `${POD_DIR}/params`,
      exists: (abs) => podPathExists(abs, inputNames),
      download: async (uri) => {
        throw new AttemptFailure(`path parameter ${uri}: on a cluster a path value names a file of the step's inputs (inputs/<name>/…) or of its image; give remote data as an input`);
      },
    });
  } catch (e) {
    if (isMLprojectError(e)) throw new AttemptFailure(e.message, { cause: e });
    throw e;
  }
  const notes: string[] = [];
  const warnings = checkParameters(loaded.entryPoint, node.parameters ?? {}).map((w) => w.message);
  if (warnings.length > 0) {
    const text = `parameter warnings: ${warnings.join("; ")}`.slice(0, 4000);
    await o.mlflow.setTag(nodeRunId, "parallels.warnings", text);
    notes.push(text);
  }

  // One listing of the inputs, here; each pod downloads only its own slice.
  const sources = await resolveInputSources({ mlflow: o.mlflow, experimentId, parentRunId, upstreamRuns: work.upstreamRuns }, node.inputs, "Kubernetes", work.windows);
  const partitionInput = node.partition?.input;
  const files = partitionInput === undefined ? [] : await listSource(o.mlflow, sources[partitionInput]!);
  if (work.windows) {
    // What each windowed input covered, on the node's run; nothing in any window: no Job (windows.ts).
    await o.mlflow.setTags(nodeRunId, windowTags(work.windows));
    const kept: Record<string, number> = {};
    for (const name of Object.keys(work.windows)) {
      const src = sources[name];
      if (src) kept[name] = name === partitionInput ? files.length : (await listSource(o.mlflow, src)).length;
    }
    const skipped = emptyWindowSkip(work.windows, kept);
    if (skipped) return { job: null, record: { v: JOB_RECORD_VERSION, experimentId, parentRunId, nodeRunId, partitions: 0 }, notes: [...notes, skipped] };
  }
  // A caching node whose key the control plane knows runs no pod (as on the local executor: after
  // the windows' skip). Its image was found in the registry above, not built: the hit used it.
  const cached = await cacheHitOf(k, work, { fetched, image, sources, nodeRunId });
  if (cached) return { job: null, cached, record: { v: JOB_RECORD_VERSION, experimentId, parentRunId, nodeRunId, partitions: 0 }, notes: [] };
  // A partition retry takes the manifest of the attempt before, so an index names the same files,
  // and runs only the partitions it names; the others' outputs stay on the runs before
  // (`parallels.outputsFrom`). Without that manifest every partition runs again.
  const plan = retryPlan(work);
  const previous = plan && node.partition ? await previousManifest(o.mlflow, plan) : undefined;
  const retry = previous ? plan : undefined;
  if (work.retry && !retry) o.logger.warn({ nodeRunId: work.nodeRunId, retry: work.retry }, "a retry of some partitions, but the manifest of the attempt before is not there: running every partition");
  let manifest: Manifest;
  if (previous) manifest = previous;
  else {
    // The items' metadata (sidecars stored with the upstream runs), carried on the manifest's slices.
    const metadata = partitionInput === undefined ? undefined : await sourceMetadata(o.mlflow, sources[partitionInput]!, files);
    manifest = computeManifest(node.partition, node.parallelism, files, metadata);
  }
  // Stored on every attempt's run (a retry of this retry finds it here).
  if (node.partition) await o.mlflow.uploadArtifact(nodeRunId, NODE_ARTIFACTS.manifest, JSON.stringify(manifest, null, 1), "application/json");
  if (retry) await o.mlflow.setTags(nodeRunId, retryTags(retry));
  const ran = retry?.indexes;
  const jobPartitions = ran?.length ?? manifest.count;

  // Nested runs of the partitions, made here (their pods find theirs in one artifact), up to a
  // limit: beyond it a partition logs under the node's run (shared/partition-runs.ts). The
  // limit counts the node's partitions, so every attempt of a node has nested runs or none; a
  // partition retry makes them for the partitions it runs only.
  let partitionRunIds: string[] | undefined;
  if (hasPartitionRuns(manifest, o.maxPartitionRuns)) {
    partitionRunIds = new Array<string>(manifest.count).fill("");
    await mapLimit(ran ?? [...Array(manifest.count).keys()], 8, async (i) => {
      partitionRunIds![i] = await findOrCreatePartitionRun(o.mlflow, experimentId, nodeRunId, work, project, i, manifest.count);
    });
    await o.mlflow.uploadArtifact(nodeRunId, NODE_ARTIFACTS.partitionRuns, JSON.stringify(partitionRunIds), "application/json");
  }

  const record: JobRecord = {
    v: JOB_RECORD_VERSION,
    experimentId,
    parentRunId,
    nodeRunId,
    partitions: manifest.count,
    ...(ran ? { ran } : {}),
    ...(partitionRunIds ? { partitionRunIds } : {}),
    ...(node.timeoutSeconds ? { timeoutSeconds: node.timeoutSeconds } : {}),
  };
  if (manifest.count === 0) return { job: null, record, notes: [...notes, `the input '${partitionInput}' has no items to partition: nothing to run`] };

  // Where its pods may go, and how many of them fit there at once.
  const gpu = (node.resources?.gpu ?? 0) > 0;
  const nodeSelector = { ...o.workNodeSelector, ...node.nodeSelector };
  const tolerations = [...o.workTolerations, ...(gpu ? o.gpuTolerations : []), ...(node.tolerations ?? [])];
  let parallelism = Math.min(node.parallelism, jobPartitions);
  const fit = podsThatFit(k.nodes(), node.resources, nodeSelector, tolerations);
  if (fit > 0 && fit < parallelism) {
    notes.push(`parallelism ${parallelism} capped to ${fit}: the cluster's nodes hold ${fit} pods of this size at once`);
    parallelism = fit;
  }

  const podAttempt: PodAttempt = {
    v: POD_ATTEMPT_VERSION,
    trackingUri: o.stepsTrackingUri,
    experimentId,
    nodeRunId,
    partitions: manifest.count,
    ...(ran ? { ran } : {}),
    ...(partitionInput !== undefined ? { partitionInput } : {}),
    partitionRuns: partitionRunIds !== undefined,
    inputs: sources,
    // A built image holds the project where MLflow puts it; otherwise the pods clone it at its commit.
    project: images ? { dir: PROJECT_DIR.replace(/\/$/, "") } : { git: fetched.git.url, commit: fetched.gitCommit, ...(fetched.git.subdirectory ? { subdirectory: fetched.git.subdirectory } : {}) },
    logsEverySeconds: o.logsEverySeconds,
  };
  const job = buildJob({
    name: jobName(work.nodeId, work.nodeRunId, work.attempt),
    namespace: o.namespace,
    labels: workLabels(o.clusterId, work),
    annotations: { [ANNOTATIONS.nodeRunId]: work.nodeRunId, [ANNOTATIONS.runId]: work.runId, [ANNOTATIONS.record]: JSON.stringify(record) },
    partitions: jobPartitions,
    parallelism,
    retriesPerIndex: node.retries,
    noRetryExitCodes: node.noRetryExitCodes ?? [],
    ...(node.timeoutSeconds ? { timeoutSeconds: node.timeoutSeconds } : {}),
    ttlSecondsAfterFinished: o.jobTtlSeconds,
    stepImage: image,
    command,
    env: { ...node.env, MLFLOW_TRACKING_URI: o.stepsTrackingUri, MLFLOW_EXPERIMENT_ID: experimentId },
    podAttempt: JSON.stringify(podAttempt),
    agentImage: o.agentImage,
    ...(o.stepsMlflowSecret ? { stepsMlflowSecret: o.stepsMlflowSecret } : {}),
    ...(o.workServiceAccount ? { serviceAccountName: o.workServiceAccount } : {}),
    imagePullSecrets: o.imagePullSecrets,
    ...(node.resources ? { resources: node.resources } : {}),
    nodeSelector,
    tolerations,
    podAnnotations: o.podAnnotations?.(work) ?? {},
    ...(o.network ? { network: o.network } : {}),
  });
  return { job, record, notes };
}
