/**
 * @module
 * MLflow's system tags (mlflow/utils/mlflow_tags.py) and the tags a project run carries, as
 * `mlflow run` sets them (mlflow/projects/utils.py `_create_run`, then the backend's set-tag
 * calls), so runs started by Parallels look like runs started by `mlflow run` in the MLflow UI.
 *
 * @example
 * ```ts
 * const tags = projectRunTags({
 *   sourceName: "https://github.com/org/repo#steps/prep",
 *   entryPoint: "main",
 *   gitCommit: "0123…",
 *   user: "alice",
 *   parentRunId: parent.info.runId,
 * });
 * const run = await client.createRun({ experimentId, runName: "prep", tags });
 * ```
 */

/** Keys of MLflow's system tags used by project runs. */
export const MLFLOW_TAGS = Object.freeze({
  user: "mlflow.user",
  runName: "mlflow.runName",
  parentRunId: "mlflow.parentRunId",
  sourceType: "mlflow.source.type",
  sourceName: "mlflow.source.name",
  gitCommit: "mlflow.source.git.commit",
  gitRepoUrl: "mlflow.source.git.repoURL",
  gitBranch: "mlflow.source.git.branch",
  entryPoint: "mlflow.project.entryPoint",
  projectEnv: "mlflow.project.env",
  projectBackend: "mlflow.project.backend",
  dockerImageUri: "mlflow.docker.image.uri",
  dockerImageId: "mlflow.docker.image.id",
  note: "mlflow.note.content",
} as const);

/** `mlflow.source.type` values (mlflow.entities.SourceType). */
export type SourceType = "PROJECT" | "JOB" | "LOCAL" | "NOTEBOOK" | "RECIPE" | "UNKNOWN";
/** `mlflow.project.env` values MLflow sets (never set for `--env-manager local`). */
export type ProjectEnv = "docker" | "virtualenv" | "conda" | "uv";

export interface ProjectRunTagsInput {
  /** `mlflow.source.name`: the project URI as given (git URL with optional `#subdir`, or a path). */
  sourceName: string;
  /** `mlflow.project.entryPoint`: the entry point as requested (`main`, `train.py`…). */
  entryPoint: string;
  /** `mlflow.user`: the launching user; MLflow writes `unknown` when it has none. */
  user?: string;
  /** `mlflow.source.git.commit`: full SHA of the checked-out commit. */
  gitCommit?: string;
  /** `mlflow.source.git.repoURL`: the repository URL; user:password@ is removed. */
  gitRepoUrl?: string;
  /** `mlflow.source.git.branch`: only when the version is a branch. */
  gitBranch?: string;
  /** `mlflow.project.env`; omit for the local env manager, as MLflow does. */
  env?: ProjectEnv;
  /** `mlflow.project.backend`: `local`, `kubernetes`… */
  backend?: string;
  /** `mlflow.runName`. */
  runName?: string;
  /** `mlflow.parentRunId`: the run this one is nested under. */
  parentRunId?: string;
  /** `mlflow.docker.image.uri` / `.id`. */
  dockerImageUri?: string;
  dockerImageId?: string;
  /** Any further tags (they may override the ones above). */
  extra?: Record<string, string>;
}

/** The tags of a project run, in the order `mlflow run` sets them. Absent inputs give no tag. */
export function projectRunTags(input: ProjectRunTagsInput): Record<string, string> {
  const t: Record<string, string> = {};
  const set = (key: string, value: string | undefined) => {
    if (value !== undefined && value !== "") t[key] = value;
  };
  set(MLFLOW_TAGS.user, input.user || "unknown");
  set(MLFLOW_TAGS.sourceName, input.sourceName);
  set(MLFLOW_TAGS.sourceType, "PROJECT");
  set(MLFLOW_TAGS.entryPoint, input.entryPoint);
  set(MLFLOW_TAGS.gitCommit, input.gitCommit);
  set(MLFLOW_TAGS.parentRunId, input.parentRunId);
  set(MLFLOW_TAGS.gitRepoUrl, input.gitRepoUrl === undefined ? undefined : stripUrlCredentials(input.gitRepoUrl));
  set(MLFLOW_TAGS.gitBranch, input.gitBranch);
  set(MLFLOW_TAGS.runName, input.runName);
  set(MLFLOW_TAGS.projectEnv, input.env);
  set(MLFLOW_TAGS.projectBackend, input.backend);
  set(MLFLOW_TAGS.dockerImageUri, input.dockerImageUri);
  set(MLFLOW_TAGS.dockerImageId, input.dockerImageId);
  Object.assign(t, input.extra);
  return t;
}

/**
 * `mlflow.source.name` for a project: the URI as given, with `#<subdirectory>` appended when the
 * subdirectory is not already part of it (MLflow keeps the fragment form).
 */
export function projectSourceName(uri: string, subdirectory?: string): string {
  const sub = subdirectory?.replace(/^\/+|\/+$/g, "");
  if (!sub || uri.includes("#")) return uri;
  return `${uri}#${sub}`;
}

/** Remove `user:password@` from an http(s) URL, as MLflow's `_strip_credentials_from_url`. */
export function stripUrlCredentials(url: string): string {
  return url.replace(/^(https?:\/\/)[^/@]*@/i, "$1");
}

/** The name MLflow Parallels gives a DAG run's parent run: `<dag>-<runId>`. */
export function dagRunName(dagName: string, runId: string): string {
  return `${dagName}-${runId}`;
}
