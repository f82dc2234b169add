/**
 * @module
 * MLflow tracking REST client for MLflow Parallels: fetch only (workerd, browser, Node).
 * Experiments, runs, params/metrics/tags within MLflow's batch limits, search, and artifacts
 * through the tracking server's artifact proxy; typed errors; retries for idempotent calls;
 * the standard tags of project runs.
 *
 * @example
 * ```ts
 * import { MlflowClient, projectRunTags, isResourceDoesNotExist } from "../proto/mlflow";
 * const mlflow = new MlflowClient({ trackingUri: "http://127.0.0.1:5000" });
 * const { experimentId } = await mlflow.getOrCreateExperiment("wordcount");
 * const run = await mlflow.createRun({ experimentId, runName: "wordcount-r1" });
 * await mlflow.terminateRun(run.info.runId, "FINISHED");
 * ```
 */
export { MlflowClient } from "./client";
export type {
  ArtifactBody,
  CreateExperimentOptions,
  CreateRunInput,
  FetchLike,
  LogBatchInput,
  MlflowClientOptions,
  RetryOptions,
  RunsPage,
  SearchRunsInput,
  TerminateOptions,
  UpdateRunInput,
} from "./client";
export {
  MlflowError,
  MlflowApiError,
  MlflowNetworkError,
  MlflowClientError,
  MLFLOW_ERROR_CODES,
  RETRYABLE_STATUSES,
  isMlflowError,
  isMlflowApiError,
  isMlflowNetworkError,
  isMlflowClientError,
  isResourceDoesNotExist,
  isResourceAlreadyExists,
  isRetryable,
  isServerOverloaded,
} from "./errors";
export type { MlflowErrorCode, MlflowClientErrorCode, MlflowApiErrorDetails } from "./errors";
export { RUN_STATUSES, TERMINAL_RUN_STATUSES, isTerminalStatus } from "./types";
export type { ArtifactFile, Experiment, Metric, Run, RunData, RunInfo, RunStatus, RunViewType } from "./types";
export { MLFLOW_LIMITS, chunkBatch } from "./batch";
export type { KeyValues, LongValuePolicy, MetricInput, MlflowLimits, ParamValue } from "./batch";
export { MLFLOW_TAGS, projectRunTags, projectSourceName, stripUrlCredentials, dagRunName } from "./tags";
export type { ProjectEnv, ProjectRunTagsInput, SourceType } from "./tags";
export { runFilter, filterKey, quoteFilterValue } from "./filter";
export type { RunFilterInput } from "./filter";
export { ARTIFACT_PROXY_PREFIX, artifactLocation } from "./artifacts";
export type { ArtifactLocation } from "./artifacts";
