/**
 * @module
 * The MLflow runs of a DAG run (ARCHITECTURE §6): one parent run per DAG run (`<dag>-<runId>`),
 * one child run per node attempt with MLflow's project tags and params, one run per partition
 * nested under the node's run. Parallels' own tags (`parallels.*`) make every lookup a search by
 * tag, so agents and restarts find the same runs:
 *
 * | tag | on |
 * |---|---|
 * | `parallels.role` = `dag-run` / `node` / `partition` | every run |
 * | `parallels.runId`, `parallels.dag` | every run |
 * | `parallels.nodeId`, `parallels.nodeRunId`, `parallels.attempt` | node and partition runs |
 * | `parallels.partition.index`, `parallels.partition.count` | partition runs |
 */
import { userInfo } from "node:os";
import { dagRunName, MLFLOW_TAGS, projectRunTags, type MlflowClient, type Run, type RunStatus } from "../../../../proto/mlflow";
import type { WorkStart } from "../../../../proto/messages";
import type { AttemptOutcome, TerminalRunStatus } from "../../../../proto/status";
import type { ProjectInfo } from "./project";
import { ensureReusedRuns } from "./reused-runs";

export const PARALLELS_TAGS = Object.freeze({
  role: "parallels.role",
  runId: "parallels.runId",
  dag: "parallels.dag",
  dagVersion: "parallels.dagVersion",
  nodeId: "parallels.nodeId",
  nodeRunId: "parallels.nodeRunId",
  attempt: "parallels.attempt",
  partitionIndex: "parallels.partition.index",
  partitionCount: "parallels.partition.count",
} as const);

/**
 * Tags of the experiments the agent creates. MLflow 3's UI opens an experiment without
 * `mlflow.experimentKind` on its GenAI overview ("No data available"); this kind opens the runs table.
 */
export const EXPERIMENT_TAGS: Readonly<Record<string, string>> = Object.freeze({ "mlflow.experimentKind": "custom_model_development" });

export function launcherUser(): string {
  try {
    return userInfo().username || "unknown";
  } catch {
    return "unknown";
  }
}

/**
 * Experiment ids by name, per MLflow client: every node of every run asks for its DAG's
 * experiment, and the answer rarely changes. An entry lives {@link EXPERIMENT_TTL_MS}; a
 * preparation that fails after using one forgets it ({@link forgetExperiment}), so a deleted or
 * renamed experiment costs one failed try, not a wrong run.
 */
const experiments = new WeakMap<MlflowClient, Map<string, { id: string; at: number }>>();
export const EXPERIMENT_TTL_MS = 5 * 60_000;

/** The id of the active experiment `name`, created (with {@link EXPERIMENT_TAGS}) when missing. */
export async function experimentFor(mlflow: MlflowClient, name: string, now = Date.now()): Promise<string> {
  let byName = experiments.get(mlflow);
  if (!byName) {
    byName = new Map();
    experiments.set(mlflow, byName);
  }
  const hit = byName.get(name);
  if (hit && now - hit.at < EXPERIMENT_TTL_MS) return hit.id;
  const { experimentId } = await mlflow.getOrCreateExperiment(name, { tags: EXPERIMENT_TAGS });
  byName.set(name, { id: experimentId, at: now });
  return experimentId;
}

export function forgetExperiment(mlflow: MlflowClient, name: string): void {
  experiments.get(mlflow)?.delete(name);
}

/** Parents found or made through a client, by (experiment, DAG run): later nodes of a run reuse them. */
const parentsOf = new WeakMap<MlflowClient, Map<string, Promise<string>>>();
/** Bounded: the oldest go first (a DAG run's nodes start within its lifetime). */
const MAX_PARENTS = 10_000;

/**
 * The parent run of a DAG run, RUNNING: looked up by tag, created when missing. Creation is
 * de-duplicated per client (the agent has one); across processes, after creating, the oldest run with the
 * tag wins (and a loser is marked KILLED), so two agents converge on one parent.
 *
 * A node attempt of the DAG run starts: its parent is RUNNING (MLflow creates runs RUNNING; a
 * parent found ended — its run was ended, then a node started again — is set RUNNING). Only the
 * control plane knows when the DAG run is over (nodes may run elsewhere, later attempts may
 * follow), so node ends never end the parent: {@link endParentRuns} does, when the control plane
 * says the run ended. A parent this call found or made is not read again; one a former call
 * found is (it may have been ended since).
 */
export async function parentRunFor(mlflow: MlflowClient, experimentId: string, work: WorkStart): Promise<string> {
  const key = `${experimentId}\n${work.runId}`;
  let parents = parentsOf.get(mlflow);
  if (!parents) {
    parents = new Map();
    parentsOf.set(mlflow, parents);
  }
  const known = parents.get(key);
  if (known) {
    const runId = await known;
    await markParentRunning(mlflow, runId);
    // The control plane sends a resumed run's reused nodes with one start per cluster: maybe not the first one here.
    if (work.reused?.length) await ensureReusedRuns(mlflow, experimentId, runId, work);
    return runId;
  }
  // A resumed run's reused nodes get their (FINISHED) child runs before any node of the run starts here.
  const lookup = findOrCreateParent(mlflow, experimentId, work).then(async (p) => {
    if (work.reused?.length) await ensureReusedRuns(mlflow, experimentId, p.runId, work);
    return p;
  });
  const runId = lookup.then((p) => p.runId);
  parents.set(key, runId);
  runId.catch(() => parents.delete(key));
  while (parents.size > MAX_PARENTS) parents.delete(parents.keys().next().value!);
  const parent = await lookup;
  if (parent.status !== "RUNNING") await mlflow.updateRun(parent.runId, { status: "RUNNING" });
  return parent.runId;
}

async function parentCandidates(mlflow: MlflowClient, experimentId: string, runId: string): Promise<Run[]> {
  const runs = await mlflow.findRuns([experimentId], { tags: { [PARALLELS_TAGS.role]: "dag-run", [PARALLELS_TAGS.runId]: runId } });
  return runs.sort((a, b) => (a.info.startTime ?? 0) - (b.info.startTime ?? 0) || (a.info.runId < b.info.runId ? -1 : 1));
}

/** The parent and its status as found (or RUNNING, as made). */
async function findOrCreateParent(mlflow: MlflowClient, experimentId: string, work: WorkStart): Promise<{ runId: string; status: RunStatus }> {
  const found = await parentCandidates(mlflow, experimentId, work.runId);
  if (found[0]) return { runId: found[0].info.runId, status: found[0].info.status };
  const created = await mlflow.createRun({
    experimentId,
    runName: dagRunName(work.dag.name, work.runId),
    tags: {
      [MLFLOW_TAGS.user]: launcherUser(),
      [PARALLELS_TAGS.role]: "dag-run",
      [PARALLELS_TAGS.runId]: work.runId,
      [PARALLELS_TAGS.dag]: work.dag.name,
      [PARALLELS_TAGS.dagVersion]: String(work.dag.version),
    },
  });
  // Another agent may have made one at the same time: the oldest wins, on every agent.
  const all = await parentCandidates(mlflow, experimentId, work.runId);
  const winner = all[0] ?? created;
  if (winner.info.runId !== created.info.runId) {
    await mlflow.terminateRun(created.info.runId, "KILLED").catch(() => undefined);
  }
  return { runId: winner.info.runId, status: winner.info.status };
}

function commonTags(work: WorkStart): Record<string, string> {
  return {
    [PARALLELS_TAGS.runId]: work.runId,
    [PARALLELS_TAGS.dag]: work.dag.name,
    [PARALLELS_TAGS.nodeId]: work.nodeId,
    [PARALLELS_TAGS.nodeRunId]: work.nodeRunId,
    [PARALLELS_TAGS.attempt]: String(work.attempt),
  };
}

export function nodeRunName(work: WorkStart): string {
  return work.attempt === 1 ? work.nodeId : `${work.nodeId}-attempt-${work.attempt}`;
}

/**
 * The node attempt's run: an existing one (same nodeRunId and attempt under the parent, from an
 * earlier try of this start) or a new one, with the project tags and params as `mlflow run`
 * logs them. The local backend tag is set; `mlflow.project.env` is not (MLflow never sets it
 * for `--env-manager local`).
 */
export async function findOrCreateNodeRun(mlflow: MlflowClient, experimentId: string, parentRunId: string, work: WorkStart, project: ProjectInfo): Promise<string> {
  const existing = await mlflow.findRuns([experimentId], {
    parentRunId,
    tags: { [PARALLELS_TAGS.role]: "node", [PARALLELS_TAGS.nodeRunId]: work.nodeRunId, [PARALLELS_TAGS.attempt]: String(work.attempt) },
  });
  let runId = existing[0]?.info.runId;
  if (!runId) {
    const run = await mlflow.createRun({ experimentId, runName: nodeRunName(work), tags: runTags(work, project, parentRunId, "node") });
    runId = run.info.runId;
  }
  await mlflow.logParams(runId, project.params);
  return runId;
}

/**
 * The MLflow tags `mlflow run` gives a project run on its local backend (source name and type,
 * entry point, git commit and repository, user, `mlflow.project.backend=local`; no
 * `mlflow.project.env`, as for `--env-manager local`), plus `extra`. The one place these are
 * computed: node and partition runs use it, and so does the conformance runner's `tags_subset`.
 */
export function localProjectRunTags(
  project: Pick<ProjectInfo, "sourceName" | "entryPoint" | "gitCommit" | "gitRepoUrl">,
  opts: { parentRunId?: string; extra?: Record<string, string> } = {},
): Record<string, string> {
  const input: Parameters<typeof projectRunTags>[0] = {
    sourceName: project.sourceName,
    entryPoint: project.entryPoint,
    user: launcherUser(),
    backend: "local",
  };
  if (opts.parentRunId) input.parentRunId = opts.parentRunId;
  if (opts.extra) input.extra = opts.extra;
  if (project.gitCommit) input.gitCommit = project.gitCommit;
  if (project.gitRepoUrl) input.gitRepoUrl = project.gitRepoUrl;
  return projectRunTags(input);
}

function runTags(work: WorkStart, project: ProjectInfo, parentRunId: string, role: "node" | "partition"): Record<string, string> {
  const extra = { ...commonTags(work), [PARALLELS_TAGS.role]: role };
  // In a container on this machine (`--containers`): as `mlflow run` tags a docker_env run.
  const image: Record<string, string> = project.image ? { [MLFLOW_TAGS.projectEnv]: "docker", [MLFLOW_TAGS.dockerImageUri]: project.image } : {};
  if (project.backend !== "kubernetes") return localProjectRunTags(project, { parentRunId, extra: { ...image, ...extra } });
  // As MLflow's own Kubernetes backend tags a run: the backend, and the image it ran in.
  return projectRunTags({
    sourceName: project.sourceName,
    entryPoint: project.entryPoint,
    user: launcherUser(),
    backend: "kubernetes",
    parentRunId,
    ...(project.image ? { env: "docker" as const, dockerImageUri: project.image } : {}),
    ...(project.gitCommit ? { gitCommit: project.gitCommit } : {}),
    ...(project.gitRepoUrl ? { gitRepoUrl: project.gitRepoUrl } : {}),
    extra,
  });
}

/** The nested run of one partition (found again by tag after a restart). */
export async function findOrCreatePartitionRun(mlflow: MlflowClient, experimentId: string, nodeRunId: string, work: WorkStart, project: ProjectInfo, index: number, count: number): Promise<string> {
  const existing = await mlflow.findRuns([experimentId], {
    parentRunId: nodeRunId,
    tags: { [PARALLELS_TAGS.role]: "partition", [PARALLELS_TAGS.partitionIndex]: String(index) },
  });
  let runId = existing[0]?.info.runId;
  if (!runId) {
    const tags = runTags(work, project, nodeRunId, "partition");
    tags[PARALLELS_TAGS.partitionIndex] = String(index);
    tags[PARALLELS_TAGS.partitionCount] = String(count);
    const run = await mlflow.createRun({ experimentId, runName: `${nodeRunName(work)}-p${index}`, tags });
    runId = run.info.runId;
  }
  await mlflow.logParams(runId, project.params);
  return runId;
}

/** Terminal status unless the step's own code already ended the run (MLflow's project runner does the same). */
export async function endRun(mlflow: MlflowClient, runId: string, status: RunStatus, endTime: number): Promise<void> {
  await mlflow.terminateRun(runId, status, { endTime, unlessTerminated: status !== "KILLED" });
}

/** A parent found before (tag `parallels.role=dag-run`): RUNNING again if it was ended since. */
async function markParentRunning(mlflow: MlflowClient, parentRunId: string): Promise<void> {
  const parent = await mlflow.getRun(parentRunId);
  if (parent.data.tags[PARALLELS_TAGS.role] !== "dag-run") return;
  if (parent.info.status !== "RUNNING") await mlflow.updateRun(parentRunId, { status: "RUNNING" });
}

/** The MLflow status a DAG run's end, or a node attempt's, maps to. */
export const MLFLOW_END_STATUS: Readonly<Record<TerminalRunStatus | AttemptOutcome, RunStatus>> = Object.freeze({
  succeeded: "FINISHED",
  failed: "FAILED",
  cancelled: "KILLED",
});

/**
 * The DAG run `runId` is over: end its parent run(s) — found by tag (`parallels.role=dag-run`,
 * `parallels.runId`) in the given experiments — with the matching status and end time `now`.
 * Idempotent: a parent already in that status with an end time is left alone. Returns the runs ended.
 */
export async function endParentRuns(mlflow: MlflowClient, experimentIds: string[], runId: string, status: TerminalRunStatus, now: number): Promise<string[]> {
  if (experimentIds.length === 0) return [];
  const target = MLFLOW_END_STATUS[status];
  const ended: string[] = [];
  for (const experimentId of new Set(experimentIds)) {
    // The oldest is the parent every node uses; younger ones lost a creation race and are KILLED.
    const p = (await parentCandidates(mlflow, experimentId, runId))[0];
    if (!p) continue;
    if (p.info.status === target && p.info.endTime !== undefined && p.info.endTime !== null) continue;
    await mlflow.terminateRun(p.info.runId, target, { endTime: now });
    ended.push(p.info.runId);
  }
  return ended;
}
