/**
 * @module
 * Runs: submit (always with an Idempotency-Key, so a retry after a lost answer returns the same
 * run instead of starting a second one), get, list, cancel, and `wait`, which polls a run until it
 * ends.
 */
import { RunPage, RunView } from "../api";
import { isTerminalRun } from "../status";
import { type CallOptions, path, sleep, type Transport } from "./http";
import type { Paginator } from "./paging";
import { listOf } from "./resources";
import type * as T from "./types";

export interface SubmitOptions extends CallOptions {
  /**
   * A retry with the same key and the same request returns the run the first one made. Default: a
   * new random key per call, which still makes the SDK's own retries safe. Pass your own to make
   * retries across processes safe (`nightly-2026-11-26`).
   */
  idempotencyKey?: string;
}

export interface WaitOptions extends CallOptions {
  /** Called with the run after every poll, the last (ended) one included. */
  onProgress?: (run: T.RunView) => void;
  /** Between polls (default 1000 ms). */
  intervalMs?: number;
}

export class Runs {
  constructor(private readonly http: Transport) {}

  /** `created` is false when an earlier request with the same Idempotency-Key made the run. */
  async submit(input: T.RunSubmitInput, opts: SubmitOptions = {}): Promise<T.RunView & { created: boolean }> {
    const key = opts.idempotencyKey ?? randomUuid();
    const { status, body } = await this.http.exchange({
      method: "POST",
      path: "/v1/runs",
      body: { json: input },
      headers: { "Idempotency-Key": key },
      schema: RunView,
      idempotent: true,
      signal: opts.signal,
    });
    return { ...body, created: status === 201 };
  }

  /**
   * A new run of a `failed` or `cancelled` run's DAG version that reuses the nodes that succeeded
   * (`params`: overrides; a node whose parameters they change runs again, and everything after it).
   * 409 when the run is not failed or cancelled. Idempotent like `submit`.
   */
  async resume(id: string, input: T.RunResumeInput = {}, opts: SubmitOptions = {}): Promise<T.RunView & { created: boolean }> {
    const key = opts.idempotencyKey ?? randomUuid();
    const { status, body } = await this.http.exchange({
      method: "POST",
      path: path`/v1/runs/${id}/resume`,
      body: { json: input },
      headers: { "Idempotency-Key": key },
      schema: RunView,
      idempotent: true,
      signal: opts.signal,
    });
    return { ...body, created: status === 201 };
  }

  /** The run with its node runs (status, attempt, partition counters, MLflow runs) and counters. */
  get(id: string, opts?: CallOptions): Promise<T.RunView> {
    return this.http.request({ method: "GET", path: path`/v1/runs/${id}`, schema: RunView, idempotent: true, signal: opts?.signal });
  }

  /** Newest first, without their node runs. */
  list(q: T.RunListQuery = {}, opts?: CallOptions): Paginator<T.RunView> {
    return listOf(this.http, "/v1/runs", RunPage, { ...q }, opts);
  }

  /**
   * Asks the agents to stop the run's steps (`cancelling` until they report, then `cancelled`).
   * `force`: cancelled at once, for a run whose cluster is gone. 409 when the run is already over.
   */
  cancel(id: string, opts: CallOptions & { force?: boolean } = {}): Promise<T.RunView> {
    return this.http.request({ method: "POST", path: path`/v1/runs/${id}/cancel`, query: { force: opts.force ? "true" : undefined }, schema: RunView, idempotent: false, signal: opts.signal });
  }

  /** Polls the run until it has ended (`succeeded`, `failed` or `cancelled`) and returns it. */
  async wait(id: string, opts: WaitOptions = {}): Promise<T.RunView> {
    const interval = opts.intervalMs ?? 1000;
    for (;;) {
      const run = await this.get(id, opts);
      opts.onProgress?.(run);
      if (isTerminalRun(run.status)) return run;
      await sleep(interval, opts.signal);
    }
  }
}

/**
 * `crypto.randomUUID` exists only in secure contexts (https, localhost) of a browser; a page served
 * over plain http elsewhere still has `getRandomValues`, from which a version 4 UUID is made.
 */
function randomUuid(): string {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
