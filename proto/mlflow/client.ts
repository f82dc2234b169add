/**
 * @module
 * A small MLflow tracking REST client. Web-standard `fetch` only: runs in workerd, browsers and
 * Node. Covers what running DAGs of MLflow Projects needs: experiments (get-or-create, race-safe),
 * runs (create with tags / parent, update status, tags, params, metrics, search, get) and
 * artifacts through the tracking server's artifact proxy (upload, list, download).
 *
 * Idempotent calls (reads, search, update, set-tag, log-batch, artifact upload) are retried with
 * exponential back-off on network errors and HTTP 429/500/502/503/504; creating an experiment or
 * a run is never retried (a retry could create a second one). Every answer the client reads is
 * parsed with its zod schema (./responses): one that does not fit is a `BAD_RESPONSE` naming the
 * endpoint and the path of the problem, never a half-read object.
 *
 * @example
 * ```ts
 * const mlflow = new MlflowClient({ trackingUri: "http://127.0.0.1:5000" });
 * const exp = await mlflow.getOrCreateExperiment("wordcount");
 * const parent = await mlflow.createRun({ experimentId: exp.experimentId, runName: "wordcount-r1" });
 * const child = await mlflow.createRun({ experimentId: exp.experimentId, parentRunId: parent.info.runId,
 *   tags: projectRunTags({ sourceName: "examples/wordcount/split", entryPoint: "main" }) });
 * await mlflow.logParams(child.info.runId, { parts: 8 });
 * await mlflow.uploadArtifact(child.info.runId, "parts/part-000.txt", "hello world\n");
 * await mlflow.terminateRun(child.info.runId, "FINISHED");
 * ```
 */
import { artifactLocation, ARTIFACT_PROXY_PREFIX, encodePath, joinPath, normalizeArtifactPath, type ArtifactLocation } from "./artifacts";
import { chunkBatch, MLFLOW_LIMITS, normalizeMetrics, normalizeParams, normalizeTags, type KeyValues, type LongValuePolicy, type MetricInput, type MlflowLimits } from "./batch";
import { apiErrorFromBody, isResourceAlreadyExists, isResourceDoesNotExist, isRetryable, MlflowClientError, MlflowNetworkError } from "./errors";
import { runFilter, type RunFilterInput } from "./filter";
import { MLFLOW_TAGS } from "./tags";
import type { z } from "zod";
import { MlflowResponses, parseResponse } from "./responses";
import {
  isTerminalStatus,
  recordToKeyValues,
  toExperiment,
  toMetric,
  toRun,
  toRunInfo,
  type ArtifactFile,
  type Experiment,
  type Metric,
  type Run,
  type RunInfo,
  type RunStatus,
  type RunViewType,
} from "./types";

/** The subset of `fetch` the client uses (inject one for tests, auth proxies or service bindings). */
export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface RetryOptions {
  /** Retries after the first attempt (default 5). 0 disables retrying. */
  maxRetries?: number;
  /** Delay before the first retry, doubled each time (default 500 ms). */
  baseDelayMs?: number;
  /** Upper bound of one delay (default 20 s); a server's `Retry-After` is honoured up to this. */
  maxDelayMs?: number;
}

export interface MlflowClientOptions {
  /** `http(s)://host[:port][/prefix]` of the tracking server. */
  trackingUri: string;
  /** Defaults to the global `fetch`. */
  fetch?: FetchLike;
  /** Extra headers on every request. */
  headers?: Record<string, string>;
  /** Bearer token (`MLFLOW_TRACKING_TOKEN`). */
  token?: string;
  /** Basic auth (`MLFLOW_TRACKING_USERNAME` / `MLFLOW_TRACKING_PASSWORD`). */
  username?: string;
  password?: string;
  /** Per attempt (default 120 s, `MLFLOW_HTTP_REQUEST_TIMEOUT`). */
  timeoutMs?: number;
  retry?: RetryOptions;
  /** Override MLflow's limits (e.g. an old server with shorter value limits). */
  limits?: Partial<MlflowLimits>;
  /** Values over the length limits: truncated (default, as MLflow's server does) or refused. */
  longValues?: LongValuePolicy;
  /** Injected for tests. */
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  random?: () => number;
}

export interface CreateExperimentOptions {
  artifactLocation?: string;
  tags?: Record<string, string>;
}

export interface CreateRunInput {
  experimentId: string;
  runName?: string;
  /** ms since epoch; default now. */
  startTime?: number;
  tags?: Record<string, string>;
  /** Sets the `mlflow.parentRunId` tag. */
  parentRunId?: string;
}

export interface UpdateRunInput {
  status?: RunStatus;
  endTime?: number;
  runName?: string;
}

export interface TerminateOptions {
  /** Default now. */
  endTime?: number;
  /**
   * Leave a run that is already FINISHED/FAILED/KILLED as it is (MLflow's project runner does
   * this, so user code that ended its own run wins). Default false.
   */
  unlessTerminated?: boolean;
}

export interface SearchRunsInput {
  experimentIds: string[];
  /** MLflow filter string; see `runFilter` to build one. */
  filter?: string;
  runViewType?: RunViewType;
  /** Per page (server default 1000, maximum 50000). */
  maxResults?: number;
  orderBy?: string[];
  pageToken?: string;
}

export interface RunsPage {
  runs: Run[];
  nextPageToken?: string;
}

export interface LogBatchInput {
  params?: KeyValues;
  tags?: KeyValues;
  metrics?: Iterable<MetricInput>;
}

/** Data for an artifact upload. Streams are sent once (never retried). */
export type ArtifactBody = Uint8Array | ArrayBuffer | Blob | string | ReadableStream<Uint8Array>;

interface RequestSpec {
  method: "GET" | "POST" | "PUT";
  /** Absolute URL, or a path below the tracking URI. */
  url: string;
  /** For messages: path below the server. */
  endpoint: string;
  json?: unknown;
  body?: BodyInit;
  headers?: Record<string, string>;
  idempotent: boolean;
}

const API = "/api/2.0/mlflow";

export class MlflowClient {
  readonly trackingUri: string;
  private readonly fetchFn: FetchLike;
  private readonly baseHeaders: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly retry: Required<RetryOptions>;
  private readonly limits: MlflowLimits;
  private readonly longValues: LongValuePolicy;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly now: () => number;
  private readonly random: () => number;
  /** runId → artifact location (artifact roots never change). */
  private readonly locations = new Map<string, ArtifactLocation>();

  constructor(options: MlflowClientOptions) {
    let url: URL;
    try {
      url = new URL(options.trackingUri);
    } catch {
      throw new MlflowClientError("INVALID_ARGUMENT", `tracking URI is not a URL: '${options.trackingUri}'`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new MlflowClientError("INVALID_ARGUMENT", `tracking URI must be http(s)://, got '${options.trackingUri}'`);
    }
    this.trackingUri = options.trackingUri.replace(/\/+$/, "");
    const f = options.fetch;
    // Call the global through a closure: workerd refuses a `fetch` detached from its global.
    this.fetchFn = f ?? ((input, init) => fetch(input, init));
    this.baseHeaders = { ...options.headers };
    if (options.token) this.baseHeaders.Authorization = `Bearer ${options.token}`;
    else if (options.username !== undefined) {
      this.baseHeaders.Authorization = `Basic ${base64(`${options.username}:${options.password ?? ""}`)}`;
    }
    this.timeoutMs = options.timeoutMs ?? 120_000;
    this.retry = {
      maxRetries: options.retry?.maxRetries ?? 5,
      baseDelayMs: options.retry?.baseDelayMs ?? 500,
      maxDelayMs: options.retry?.maxDelayMs ?? 20_000,
    };
    this.limits = { ...MLFLOW_LIMITS, ...options.limits };
    this.longValues = options.longValues ?? "truncate";
    this.sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
  }

  // ---- experiments -----------------------------------------------------------------------------

  /** The experiment of that name (active or deleted), or undefined. */
  async getExperimentByName(name: string): Promise<Experiment | undefined> {
    try {
      const r = await this.get("experiments/get-by-name", { experiment_name: name }, MlflowResponses.experiment);
      return toExperiment(r.experiment);
    } catch (e) {
      if (isResourceDoesNotExist(e)) return undefined;
      throw e;
    }
  }

  async getExperiment(experimentId: string): Promise<Experiment> {
    const r = await this.get("experiments/get", { experiment_id: experimentId }, MlflowResponses.experiment);
    return toExperiment(r.experiment);
  }

  /** Create an experiment; its id. Not retried. Fails with RESOURCE_ALREADY_EXISTS if taken. */
  async createExperiment(name: string, options: CreateExperimentOptions = {}): Promise<string> {
    const body: Record<string, unknown> = { name };
    if (options.artifactLocation !== undefined) body.artifact_location = options.artifactLocation;
    if (options.tags) body.tags = recordToKeyValues(options.tags);
    const r = await this.post("experiments/create", body, false, MlflowResponses.experimentCreated);
    return r.experiment_id;
  }

  /**
   * The active experiment of that name, created if missing. Safe when several callers race: a
   * create that loses (RESOURCE_ALREADY_EXISTS) reads the winner's experiment. A *deleted*
   * experiment of that name is an error (MLflow would refuse runs in it): restore or rename it.
   */
  async getOrCreateExperiment(name: string, options: CreateExperimentOptions = {}): Promise<Experiment> {
    const found = await this.getExperimentByName(name);
    if (found) return activeOrThrow(found);
    try {
      const id = await this.createExperiment(name, options);
      return await this.getExperiment(id);
    } catch (e) {
      if (!isResourceAlreadyExists(e)) throw e;
      const winner = await this.getExperimentByName(name);
      if (!winner) throw e;
      return activeOrThrow(winner);
    }
  }

  // ---- runs ------------------------------------------------------------------------------------

  /** Create a run (status RUNNING). Not retried. */
  async createRun(input: CreateRunInput): Promise<Run> {
    const tags: Record<string, string> = { ...input.tags };
    if (input.parentRunId !== undefined) tags[MLFLOW_TAGS.parentRunId] = input.parentRunId;
    // run_name and the mlflow.runName tag must agree (the server refuses them otherwise).
    if (input.runName !== undefined) tags[MLFLOW_TAGS.runName] = input.runName;
    const body: Record<string, unknown> = {
      experiment_id: input.experimentId,
      start_time: Math.trunc(input.startTime ?? this.now()),
      tags: normalizeTags(tags, this.limits, this.longValues),
    };
    if (input.runName !== undefined) body.run_name = input.runName;
    const user = tags[MLFLOW_TAGS.user];
    if (user !== undefined) body.user_id = user;
    const r = await this.post("runs/create", body, false, MlflowResponses.run);
    return this.remember(toRun(r.run));
  }

  async getRun(runId: string): Promise<Run> {
    const r = await this.get("runs/get", { run_id: runId }, MlflowResponses.run);
    return this.remember(toRun(r.run));
  }

  /** Change status, end time and/or name. */
  async updateRun(runId: string, input: UpdateRunInput): Promise<RunInfo> {
    const body: Record<string, unknown> = { run_id: runId };
    if (input.status !== undefined) body.status = input.status;
    if (input.endTime !== undefined) body.end_time = Math.trunc(input.endTime);
    if (input.runName !== undefined) body.run_name = input.runName;
    const r = await this.post("runs/update", body, true, MlflowResponses.runUpdated);
    return toRunInfo(r.run_info);
  }

  /** Mark a run FINISHED (default), FAILED or KILLED with an end time. */
  async terminateRun(runId: string, status: RunStatus = "FINISHED", options: TerminateOptions = {}): Promise<RunInfo> {
    if (!isTerminalStatus(status)) {
      throw new MlflowClientError("INVALID_ARGUMENT", `terminateRun needs FINISHED, FAILED or KILLED, got ${status}`);
    }
    if (options.unlessTerminated) {
      const current = await this.getRun(runId);
      if (isTerminalStatus(current.info.status)) return current.info;
    }
    return this.updateRun(runId, { status, endTime: options.endTime ?? this.now() });
  }

  async setTag(runId: string, key: string, value: string): Promise<void> {
    const [tag] = normalizeTags({ [key]: value }, this.limits, this.longValues);
    await this.postRaw("runs/set-tag", { run_id: runId, key: tag!.key, value: tag!.value }, true);
  }

  /** Set several tags (log-batch, chunked). */
  async setTags(runId: string, tags: KeyValues): Promise<void> {
    await this.logBatch(runId, { tags });
  }

  async deleteTag(runId: string, key: string): Promise<void> {
    await this.postRaw("runs/delete-tag", { run_id: runId, key }, true);
  }

  /** Log params (write-once: re-logging the same value is fine, another value is refused). */
  async logParams(runId: string, params: KeyValues): Promise<void> {
    await this.logBatch(runId, { params });
  }

  async logMetrics(runId: string, metrics: Iterable<MetricInput>): Promise<void> {
    await this.logBatch(runId, { metrics });
  }

  async logMetric(runId: string, key: string, value: number, options: { step?: number; timestamp?: number } = {}): Promise<void> {
    await this.logBatch(runId, { metrics: [{ key, value, ...options }] });
  }

  /**
   * Params, tags and metrics in as few `runs/log-batch` requests as MLflow's limits allow
   * (100 params, 100 tags, 1000 metrics, 1000 in all, 1 MB per request); nothing is sent when
   * everything is empty. Requests go one after the other; a failure stops the rest (earlier
   * chunks stay logged).
   */
  async logBatch(runId: string, input: LogBatchInput): Promise<void> {
    const chunks = chunkBatch(
      runId,
      {
        params: normalizeParams(input.params, this.limits, this.longValues),
        tags: normalizeTags(input.tags, this.limits, this.longValues),
        metrics: normalizeMetrics(input.metrics, this.now()),
      },
      this.limits,
    );
    for (const c of chunks) await this.postRaw("runs/log-batch", { run_id: runId, ...c }, true);
  }

  /** Every logged value of one metric (all pages). */
  async getMetricHistory(runId: string, key: string): Promise<Metric[]> {
    const out: Metric[] = [];
    let pageToken: string | undefined;
    do {
      const query: Record<string, string> = { run_id: runId, metric_key: key };
      if (pageToken) query.page_token = pageToken;
      const r = await this.get("metrics/get-history", query, MlflowResponses.metricHistory);
      out.push(...(r.metrics ?? []).map(toMetric));
      pageToken = r.next_page_token;
    } while (pageToken);
    return out;
  }

  /** One page of runs. */
  async searchRuns(input: SearchRunsInput): Promise<RunsPage> {
    const body: Record<string, unknown> = {
      experiment_ids: input.experimentIds,
      run_view_type: input.runViewType ?? "ACTIVE_ONLY",
    };
    if (input.filter) body.filter = input.filter;
    if (input.maxResults !== undefined) body.max_results = input.maxResults;
    if (input.orderBy) body.order_by = input.orderBy;
    if (input.pageToken) body.page_token = input.pageToken;
    const r = await this.post("runs/search", body, true, MlflowResponses.runsPage);
    const page: RunsPage = { runs: (r.runs ?? []).map(toRun) };
    if (r.next_page_token) page.nextPageToken = r.next_page_token;
    return page;
  }

  /** Every page, lazily. */
  async *iterateRuns(input: Omit<SearchRunsInput, "pageToken">): AsyncGenerator<Run> {
    let pageToken: string | undefined;
    do {
      const page = await this.searchRuns(pageToken === undefined ? input : { ...input, pageToken });
      yield* page.runs;
      pageToken = page.nextPageToken;
    } while (pageToken);
  }

  /** Every matching run (all pages). */
  async searchAllRuns(input: Omit<SearchRunsInput, "pageToken">): Promise<Run[]> {
    const runs: Run[] = [];
    for await (const r of this.iterateRuns(input)) runs.push(r);
    return runs;
  }

  /** Runs matching parent / tags / params (see `runFilter`), all pages. */
  async findRuns(experimentIds: string[], where: RunFilterInput, options: { orderBy?: string[]; maxResults?: number } = {}): Promise<Run[]> {
    return this.searchAllRuns({ experimentIds, filter: runFilter(where), ...options });
  }

  /** The runs nested directly under `parentRunId`. */
  async childRuns(experimentIds: string[], parentRunId: string): Promise<Run[]> {
    return this.findRuns(experimentIds, { parentRunId });
  }

  // ---- artifacts (through the tracking server's proxy) ------------------------------------------

  /** Where the run's artifacts are on the proxy (cached per run). */
  async artifactLocationOf(runId: string): Promise<ArtifactLocation> {
    const known = this.locations.get(runId);
    if (known) return known;
    const run = await this.getRun(runId);
    const loc = artifactLocation(run.info.artifactUri, this.trackingUri); // throws ARTIFACTS_NOT_PROXIED
    this.locations.set(runId, loc);
    return loc;
  }

  /** Upload (or overwrite) one file at `path` below the run's artifact root. */
  async uploadArtifact(runId: string, path: string, data: ArtifactBody, contentType = "application/octet-stream"): Promise<void> {
    const rel = normalizeArtifactPath(path);
    const loc = await this.artifactLocationOf(runId);
    const stream = typeof ReadableStream !== "undefined" && data instanceof ReadableStream;
    const body: BodyInit = data instanceof Uint8Array ? (data as Uint8Array<ArrayBuffer>) : (data as BodyInit);
    await this.request({
      method: "PUT",
      ...proxyUrl(loc, rel),
      body,
      headers: { "Content-Type": contentType },
      idempotent: !stream, // a stream can only be read once
    });
  }

  /** The entries directly in `dir` ("" = the root); paths are relative to the run's root. */
  async listArtifacts(runId: string, dir = ""): Promise<ArtifactFile[]> {
    const rel = normalizeArtifactPath(dir, true);
    const loc = await this.artifactLocationOf(runId);
    const endpoint = `${ARTIFACT_PROXY_PREFIX}?path=${encodeURIComponent(joinPath(loc.rootPath, rel))}`;
    const res = await this.request({ method: "GET", url: loc.serverUrl + endpoint, endpoint: ARTIFACT_PROXY_PREFIX, idempotent: true });
    const r = parseResponse(MlflowResponses.artifactList, await readJson(res, "GET", ARTIFACT_PROXY_PREFIX), "GET", ARTIFACT_PROXY_PREFIX);
    return (r.files ?? []).map((f) => {
      const name = f.path.split("/").pop() ?? f.path; // the proxy answers basenames
      const file: ArtifactFile = { path: joinPath(rel, name), isDir: f.is_dir === true };
      if (!file.isDir) file.fileSize = Number(f.file_size ?? 0); // proto3 JSON omits a size of 0
      return file;
    });
  }

  /** Every file (not directory) below `dir`, recursively, sorted by path. */
  async listArtifactsRecursive(runId: string, dir = ""): Promise<ArtifactFile[]> {
    const out: ArtifactFile[] = [];
    const pending = [normalizeArtifactPath(dir, true)];
    while (pending.length > 0) {
      const d = pending.pop()!;
      for (const f of await this.listArtifacts(runId, d)) {
        if (f.isDir) pending.push(f.path);
        else out.push(f);
      }
    }
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /** The bytes of one artifact file. A missing file is an MlflowApiError (404). */
  async downloadArtifact(runId: string, path: string): Promise<Uint8Array> {
    const res = await this.openArtifact(runId, path);
    return new Uint8Array(await res.arrayBuffer());
  }

  async downloadArtifactText(runId: string, path: string): Promise<string> {
    return new TextDecoder().decode(await this.downloadArtifact(runId, path));
  }

  /** The response of an artifact download, for streaming its body (the client's `timeoutMs` also bounds reading it). */
  async openArtifact(runId: string, path: string): Promise<Response> {
    const rel = normalizeArtifactPath(path);
    const loc = await this.artifactLocationOf(runId);
    return this.request({ method: "GET", ...proxyUrl(loc, rel), idempotent: true });
  }

  // ---- transport -------------------------------------------------------------------------------

  private remember(run: Run): Run {
    if (run.info.artifactUri && !this.locations.has(run.info.runId)) {
      try {
        this.locations.set(run.info.runId, artifactLocation(run.info.artifactUri, this.trackingUri));
      } catch {
        // Not proxied: artifact calls on this run will report it.
      }
    }
    return run;
  }

  /** A GET of the tracking API; its answer read with `schema`. */
  private async get<S extends z.ZodType>(path: string, query: Record<string, string>, schema: S): Promise<z.infer<S>> {
    const qs = new URLSearchParams(query).toString();
    const endpoint = `${API}/${path}`;
    const res = await this.request({ method: "GET", url: `${this.trackingUri}${endpoint}?${qs}`, endpoint, idempotent: true });
    return parseResponse(schema, await readJson(res, "GET", endpoint), "GET", endpoint);
  }

  /** A POST of the tracking API; its answer read with `schema`. */
  private async post<S extends z.ZodType>(path: string, body: unknown, idempotent: boolean, schema: S): Promise<z.infer<S>> {
    return parseResponse(schema, await this.postRaw(path, body, idempotent), "POST", `${API}/${path}`);
  }

  /** A POST; its answer as JSON, unchecked (set-tag, delete-tag and log-batch answer `{}`, which nothing reads). */
  private async postRaw(path: string, body: unknown, idempotent: boolean): Promise<unknown> {
    const endpoint = `${API}/${path}`;
    const res = await this.request({ method: "POST", url: `${this.trackingUri}${endpoint}`, endpoint, json: body, idempotent });
    return readJson(res, "POST", endpoint);
  }

  /** One request with retries; resolves to a 2xx response, throws typed errors otherwise. */
  private async request(spec: RequestSpec): Promise<Response> {
    const headers: Record<string, string> = { ...this.baseHeaders, ...spec.headers };
    let body = spec.body;
    if (spec.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(spec.json);
    }
    const isStream = typeof ReadableStream !== "undefined" && body instanceof ReadableStream;
    for (let attempt = 0; ; attempt++) {
      const canRetry = spec.idempotent && attempt < this.retry.maxRetries;
      let res: Response;
      const signal = AbortSignal.timeout(this.timeoutMs);
      try {
        const init: RequestInit & { duplex?: "half" } = { method: spec.method, headers, body: body ?? null, signal };
        if (isStream) init.duplex = "half"; // required by Node's fetch for stream bodies
        res = await this.fetchFn(spec.url, init);
      } catch (e) {
        const err = new MlflowNetworkError(spec.method, spec.endpoint, e, signal.aborted);
        if (!canRetry) throw err;
        await this.sleep(this.backoff(attempt));
        continue;
      }
      if (res.ok) return res;
      const text = await res.text().catch(() => "");
      const err = apiErrorFromBody(res.status, text, spec.method, spec.endpoint);
      if (!canRetry || !isRetryable(err)) throw err;
      await this.sleep(this.backoff(attempt, res.headers.get("Retry-After")));
    }
  }

  private backoff(attempt: number, retryAfter?: string | null): number {
    const { baseDelayMs, maxDelayMs } = this.retry;
    const seconds = retryAfter ? Number(retryAfter) : NaN;
    if (Number.isFinite(seconds) && seconds >= 0) return Math.min(maxDelayMs, seconds * 1000);
    const exp = baseDelayMs * 2 ** attempt;
    return Math.min(maxDelayMs, exp + this.random() * baseDelayMs); // jitter up to one base delay
  }
}

function activeOrThrow(e: Experiment): Experiment {
  if (e.lifecycleStage === "active") return e;
  throw new MlflowClientError("EXPERIMENT_DELETED", `experiment '${e.name}' (id ${e.experimentId}) is ${e.lifecycleStage}: restore it in MLflow or choose another name`);
}

function proxyUrl(loc: ArtifactLocation, rel: string): { url: string; endpoint: string } {
  const endpoint = `${ARTIFACT_PROXY_PREFIX}/${encodePath(joinPath(loc.rootPath, rel))}`;
  return { url: loc.serverUrl + endpoint, endpoint };
}

async function readJson(res: Response, method: string, endpoint: string): Promise<unknown> {
  const text = await res.text();
  if (text.trim() === "") return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new MlflowClientError("BAD_RESPONSE", `MLflow ${method} ${endpoint} answered ${res.status} with a body that is not JSON: ${text.slice(0, 200)}`);
  }
}

function base64(s: string): string {
  const bytes = new TextEncoder().encode(s);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}
