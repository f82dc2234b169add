/**
 * @module
 * Options of the local executor and the context its attempts share (resolved defaults, the
 * MLflow client, the process slots).
 */
import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import type { MlflowClient } from "../../../../proto/mlflow";
import { mlflowClient } from "../../mlflow";
import { DEFAULT_MAX_PARTITION_RUNS } from "../shared/partition-runs";
import type { LocalContainers } from "./containers";
import type { CacheLookupFn } from "../types";

/** The subset of a pino logger the executor uses. */
export interface ExecutorLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface LocalExecutorOptions {
  /** Durable state: attempt records (`attempts/`), git checkouts (`git/`). */
  stateDir: string;
  /** Where attempts keep inputs, outputs and logs (default `<stateDir>/work`). */
  workDir?: string;
  /** MLflow tracking server (`http(s)://…`); also given to the steps as `MLFLOW_TRACKING_URI`. */
  trackingUri: string;
  /** A configured client (auth, retries); default a plain client for `trackingUri`. */
  mlflow?: MlflowClient;
  /** Told the endpoint of each request of the default client (the agent's metrics count them). */
  onMlflowRequest?: (endpoint: string) => void;
  /** Relative project paths and relative `{uri}` inputs resolve here (default the process's cwd). */
  projectsRoot?: string;
  /**
   * The environment steps start from (default `process.env`, as MLflow's local backend), without
   * the agent's own secrets: every `PARALLELS_*` variable, and `MLFLOW_TRACKING_TOKEN` /
   * `MLFLOW_TRACKING_PASSWORD` unless {@link stepsMlflowCredentials}. The node's `env` and the
   * MLflow / Parallels variables are added on top.
   */
  env?: NodeJS.ProcessEnv;
  /** Give the steps the MLflow credentials of {@link env} (`MLFLOW_TRACKING_TOKEN`, `MLFLOW_TRACKING_PASSWORD`). Default false. */
  stepsMlflowCredentials?: boolean;
  /** A Python environment's bin folder, put first on the steps' PATH (`--env-manager local` = this Python). */
  pythonBinDir?: string;
  /** Shell that runs the rendered command, as `<shell> -c <command>` (default `bash`, as MLflow). */
  shell?: string;
  /** Most step processes running at once over all attempts (default: the number of CPUs). */
  maxProcesses?: number;
  /** A node of up to this many partitions gets a nested MLflow run per partition; beyond, the partitions table (default 100; shared/partition-runs.ts). */
  maxPartitionRuns?: number;
  /** Between SIGTERM and SIGKILL when stopping a step (default 10 s). */
  killGraceMs?: number;
  /** How often running processes are checked (default 500 ms). */
  pollMs?: number;
  /** How often the logs of running steps are uploaded, so they can be read (and survive) while a step runs (default 30 s; 0: only at the end). */
  logUploadMs?: number;
  /** Lines of stderr quoted in a `failed` message (default 20). */
  stderrTailLines?: number;
  /** Keep each attempt's folder after it ended (default: removed once its artifacts are uploaded). */
  keepWorkDirs?: boolean;
  /**
   * How long the record of an ended, reported attempt is kept (default 7 days): it answers a late
   * redelivery of its `start` and a late "run ended" (to close the MLflow parent run). Older ones
   * are deleted at start-up and hourly, so a long-lived agent's state does not grow without end.
   */
  keepEndedRecordsMs?: number;
  /** Git checkouts no attempt used for this long are deleted with the records (default 7 days). */
  keepUnusedCheckoutsMs?: number;
  /** git executable (default `git`). */
  gitBin?: string;
  /**
   * Run each partition in the step's image with `podman run` (`--containers podman`): the image is
   * built from the project's environment (buildah, the generated Dockerfile a cluster builds) or
   * found where images are kept. Default: steps run as processes in the current Python environment.
   */
  containers?: LocalContainers;
  logger?: ExecutorLogger;
  /** The control plane's cache lookup (the core's): without it, caching nodes always run. */
  cacheLookup?: CacheLookupFn;
  /** Injected clock (ms since epoch) and delay, for tests. */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** Process slots shared by every attempt of one executor. */
export class Slots {
  private used = 0;
  private readonly waiters = new Set<() => void>();
  constructor(readonly max: number) {}
  get inUse(): number {
    return this.used;
  }
  tryAcquire(): boolean {
    if (this.used >= this.max) return false;
    this.used++;
    return true;
  }
  /** Count a process that is already running (re-attached after a restart), even over the limit. */
  force(): void {
    this.used++;
  }
  release(): void {
    this.used = Math.max(0, this.used - 1);
    for (const w of [...this.waiters]) w();
  }
  /** Called on every release. */
  onRelease(fn: () => void): () => void {
    this.waiters.add(fn);
    return () => this.waiters.delete(fn);
  }
}

export interface ExecutorContext {
  stateDir: string;
  workDir: string;
  gitCacheDir: string;
  trackingUri: string;
  mlflow: MlflowClient;
  projectsRoot: string;
  baseEnv: NodeJS.ProcessEnv;
  shell: string;
  killGraceMs: number;
  maxPartitionRuns: number;
  pollMs: number;
  stderrTailLines: number;
  logUploadMs: number;
  keepWorkDirs: boolean;
  keepEndedRecordsMs: number;
  keepUnusedCheckoutsMs: number;
  gitBin: string;
  containers?: LocalContainers;
  slots: Slots;
  log: ExecutorLogger;
  cacheLookup?: CacheLookupFn;
  now: () => number;
  sleep: (ms: number) => Promise<void>;
}

/** MLflow credentials the agent may hold; steps get them only when configured so. */
export const MLFLOW_SECRET_VARS: readonly string[] = ["MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_PASSWORD"];

/** The environment steps start from: `env` without the agent's secrets (see {@link LocalExecutorOptions.env}). */
export function stepEnv(env: NodeJS.ProcessEnv, mlflowCredentials: boolean): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) {
    if (k.startsWith("PARALLELS_")) continue;
    if (!mlflowCredentials && MLFLOW_SECRET_VARS.includes(k)) continue;
    out[k] = v;
  }
  return out;
}

const silent: ExecutorLogger = { info: () => {}, warn: () => {}, error: () => {} };

export function resolveOptions(o: LocalExecutorOptions): ExecutorContext {
  const stateDir = resolve(o.stateDir);
  const baseEnv = stepEnv(o.env ?? process.env, o.stepsMlflowCredentials ?? false);
  if (o.pythonBinDir) baseEnv.PATH = `${o.pythonBinDir}${baseEnv.PATH ? `:${baseEnv.PATH}` : ""}`;
  const max = o.maxProcesses ?? availableParallelism();
  if (!Number.isInteger(max) || max < 1) throw new RangeError(`maxProcesses must be a positive integer, got ${max}`);
  return {
    stateDir,
    workDir: resolve(o.workDir ?? join(stateDir, "work")),
    gitCacheDir: join(stateDir, "git"),
    trackingUri: o.trackingUri.replace(/\/+$/, ""),
    mlflow: o.mlflow ?? mlflowClient(o.trackingUri, o.env ?? process.env, o.onMlflowRequest),
    projectsRoot: resolve(o.projectsRoot ?? process.cwd()),
    baseEnv,
    shell: o.shell ?? "bash",
    killGraceMs: o.killGraceMs ?? 10_000,
    maxPartitionRuns: o.maxPartitionRuns ?? DEFAULT_MAX_PARTITION_RUNS,
    pollMs: o.pollMs ?? 500,
    stderrTailLines: o.stderrTailLines ?? 20,
    logUploadMs: o.logUploadMs ?? 30_000,
    keepWorkDirs: o.keepWorkDirs ?? false,
    keepEndedRecordsMs: o.keepEndedRecordsMs ?? 7 * 24 * 3600_000,
    keepUnusedCheckoutsMs: o.keepUnusedCheckoutsMs ?? 7 * 24 * 3600_000,
    gitBin: o.gitBin ?? "git",
    ...(o.containers ? { containers: o.containers } : {}),
    slots: new Slots(max),
    log: o.logger ?? silent,
    ...(o.cacheLookup ? { cacheLookup: o.cacheLookup } : {}),
    now: o.now ?? Date.now,
    sleep: o.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms))),
  };
}
