/**
 * @module
 * MLflow tracking entities as this client returns them (camelCase, tags and params as records),
 * and the converters from the raw snake_case JSON of the REST API (parsed by ./responses).
 */
import type { RawExperiment, RawKeyValue, RawMetric, RawRun, RawRunInfo } from "./responses";

export const RUN_STATUSES = ["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];
/** FINISHED, FAILED and KILLED: the run is over. */
export const TERMINAL_RUN_STATUSES: ReadonlySet<RunStatus> = new Set(["FINISHED", "FAILED", "KILLED"]);
export function isTerminalStatus(s: RunStatus): boolean {
  return TERMINAL_RUN_STATUSES.has(s);
}

export type RunViewType = "ACTIVE_ONLY" | "DELETED_ONLY" | "ALL";

export interface Experiment {
  experimentId: string;
  name: string;
  artifactLocation: string;
  /** `active` or `deleted`. */
  lifecycleStage: string;
  creationTime?: number;
  lastUpdateTime?: number;
  tags: Record<string, string>;
}

export interface RunInfo {
  runId: string;
  runName: string;
  experimentId: string;
  userId: string;
  status: RunStatus;
  /** ms since epoch. */
  startTime?: number;
  /** ms since epoch; absent while the run is not over. */
  endTime?: number;
  artifactUri: string;
  lifecycleStage: string;
}

export interface Metric {
  key: string;
  value: number;
  /** ms since epoch. */
  timestamp: number;
  step: number;
}

export interface RunData {
  /** Latest value of each metric (the server keeps the history). */
  metrics: Metric[];
  params: Record<string, string>;
  tags: Record<string, string>;
}

export interface Run {
  info: RunInfo;
  data: RunData;
}

/** One entry of an artifact listing; `path` is relative to the run's artifact root. */
export interface ArtifactFile {
  path: string;
  isDir: boolean;
  /** Bytes; absent for directories. */
  fileSize?: number;
}

// ---- converters --------------------------------------------------------------------------------

/** An int64 field (a number, or a string of digits: see ./responses). */
function int(v: number | string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = typeof v === "number" ? v : Number(v);
  return Number.isFinite(n) ? n : undefined;
}

/** A double (a number, or `NaN`/`Infinity`/a number as a string: see ./responses). */
function double(v: number | string): number {
  return typeof v === "number" ? v : Number(v);
}

export function keyValuesToRecord(kvs: RawKeyValue[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of kvs ?? []) out[kv.key] = kv.value ?? "";
  return out;
}

export function toExperiment(raw: RawExperiment): Experiment {
  const e: Experiment = {
    experimentId: raw.experiment_id,
    name: raw.name,
    artifactLocation: raw.artifact_location ?? "",
    lifecycleStage: raw.lifecycle_stage ?? "active",
    tags: keyValuesToRecord(raw.tags),
  };
  const created = int(raw.creation_time);
  const updated = int(raw.last_update_time);
  if (created !== undefined) e.creationTime = created;
  if (updated !== undefined) e.lastUpdateTime = updated;
  return e;
}

export function toRunInfo(raw: RawRunInfo): RunInfo {
  const info: RunInfo = {
    runId: raw.run_id ?? raw.run_uuid ?? "", // the schema requires one of them
    runName: raw.run_name ?? "",
    experimentId: raw.experiment_id,
    userId: raw.user_id ?? "",
    status: raw.status ?? "RUNNING",
    artifactUri: raw.artifact_uri ?? "",
    lifecycleStage: raw.lifecycle_stage ?? "active",
  };
  const start = int(raw.start_time);
  const end = int(raw.end_time);
  if (start !== undefined) info.startTime = start;
  if (end !== undefined) info.endTime = end;
  return info;
}

export function toMetric(raw: RawMetric): Metric {
  return { key: raw.key, value: double(raw.value), timestamp: int(raw.timestamp) ?? 0, step: int(raw.step) ?? 0 };
}

export function toRun(raw: RawRun): Run {
  return {
    info: toRunInfo(raw.info),
    data: {
      metrics: (raw.data?.metrics ?? []).map(toMetric),
      params: keyValuesToRecord(raw.data?.params),
      tags: keyValuesToRecord(raw.data?.tags),
    },
  };
}

export function recordToKeyValues(r: Record<string, string>): { key: string; value: string }[] {
  return Object.entries(r).map(([key, value]) => ({ key, value }));
}
