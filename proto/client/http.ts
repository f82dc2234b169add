/**
 * @module
 * The SDK's transport: one `fetch` per attempt, nothing but Web-standard APIs (browsers, workerd,
 * Node). Every answer is read with the zod schema of its endpoint (`proto/api.ts`), so a caller
 * never holds a half-read object.
 *
 * Retries: 429 and 503 say the request was not carried out, so any request is tried again, after
 * the server's `Retry-After` when it sends one (a browser reads it only if the control plane
 * exposes it through CORS; otherwise the back-off applies). A failure without an answer (refused,
 * reset, timed out) may have happened after the server acted, so only idempotent requests are
 * retried then: reads, PUT, DELETE, PATCH of a schedule, and a submit (it always carries an
 * Idempotency-Key). Back-off: exponential with jitter, capped.
 */
import type { z } from "zod";
import { formatPath } from "../dag/problems";
import { errorFromAnswer, ParallelsError } from "./errors";

/** The subset of `fetch` the client uses. A custom one serves auth proxies, service bindings and tests. */
export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface RetryOptions {
  /** Retries after the first attempt (default 4). 0 disables retrying. */
  maxRetries?: number;
  /** Delay before the first retry, doubled each time (default 300 ms). */
  baseDelayMs?: number;
  /** Upper bound of one delay, `Retry-After` included (default 20 s). */
  maxDelayMs?: number;
}

export interface ClientOptions {
  /** Where the control plane answers, e.g. `https://parallels.example.com` (the API is under `/v1`). */
  baseUrl: string;
  /** An API token (`Authorization: Bearer`). */
  token?: string;
  /** Defaults to the global `fetch`. */
  fetch?: FetchLike;
  retry?: RetryOptions;
  /** Per attempt (default 30 s). */
  timeoutMs?: number;
  /** Extra headers on every request. */
  headers?: Record<string, string>;
}

/** What every call of the SDK may be given. */
export interface CallOptions {
  /** Aborts the call (its retries and waits too): the call rejects with the signal's reason. */
  signal?: AbortSignal;
}

export type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

export interface RequestSpec<S extends z.ZodType> {
  method: Method;
  /** Below the base URL, path parameters already encoded (`path` below does it). */
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  /** A JSON value, or YAML text (a DAG as written). */
  body?: { json: unknown } | { yaml: string };
  headers?: Record<string, string>;
  /** The schema of the success answer. */
  schema: S;
  /** Whether a request that got no answer may be sent again (see the module's comment). */
  idempotent: boolean;
  signal?: AbortSignal | undefined;
}

/** `path\`/v1/dags/${name}\``: each parameter encoded as one path segment. */
export const path = (strings: TemplateStringsArray, ...params: (string | number)[]): string =>
  strings.reduce((out, s, i) => out + s + (i < params.length ? encodeURIComponent(String(params[i])) : ""), "");

export class Transport {
  readonly baseUrl: string;
  private readonly fetchFn: FetchLike;
  private readonly token: string | undefined;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly maxRetries: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;

  constructor(opts: ClientOptions) {
    let url: URL;
    try {
      url = new URL(opts.baseUrl);
    } catch {
      throw new TypeError(`baseUrl must be an absolute http(s) URL, got ${JSON.stringify(opts.baseUrl)}`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new TypeError(`baseUrl must be an http(s) URL, got ${JSON.stringify(opts.baseUrl)}`);
    this.baseUrl = url.href.replace(/\/+$/, "");
    // Bound once: a browser's or workerd's `fetch` called as a method of another object throws "Illegal invocation".
    this.fetchFn = opts.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.token = opts.token;
    this.headers = opts.headers ?? {};
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.maxRetries = opts.retry?.maxRetries ?? 4;
    this.baseDelayMs = opts.retry?.baseDelayMs ?? 300;
    this.maxDelayMs = opts.retry?.maxDelayMs ?? 20_000;
  }

  /** Sends the request (with retries) and reads the success answer with `spec.schema`. */
  async request<S extends z.ZodType>(spec: RequestSpec<S>): Promise<z.output<S>> {
    return (await this.exchange(spec)).body;
  }

  /** As `request`, with the answer's status (a PUT says 201 for a new DAG, 200 for a new version). */
  async exchange<S extends z.ZodType>(spec: RequestSpec<S>): Promise<{ status: number; body: z.output<S> }> {
    const req = { method: spec.method, path: spec.path };
    for (let attempt = 0; ; attempt++) {
      spec.signal?.throwIfAborted();
      // One timeout for the whole attempt: the answer's headers and its body.
      const timed = withTimeout(spec.signal, this.timeoutMs);
      try {
        let res: Response;
        try {
          res = await this.send(spec, timed.signal);
        } catch (e) {
          if (spec.signal?.aborted) throw spec.signal.reason;
          const err = new ParallelsError({ code: "network_error", status: 0, message: `${spec.method} ${this.baseUrl}${spec.path} got no answer: ${reason(e)}`, cause: e, ...req });
          if (!spec.idempotent || attempt >= this.maxRetries) throw err;
          timed.done();
          await sleep(this.backoff(attempt), spec.signal);
          continue;
        }
        if ((res.status === 429 || res.status === 503) && attempt < this.maxRetries) {
          const wait = retryAfterMs(res.headers.get("Retry-After")) ?? this.backoff(attempt);
          await res.body?.cancel().catch(() => undefined);
          timed.done();
          await sleep(Math.min(wait, this.maxDelayMs), spec.signal);
          continue;
        }
        let text: string;
        try {
          text = await res.text();
        } catch (e) {
          if (spec.signal?.aborted) throw spec.signal.reason;
          throw new ParallelsError({ code: "network_error", status: res.status, message: `${spec.method} ${spec.path}: the answer broke off: ${reason(e)}`, cause: e, ...req });
        }
        if (!res.ok) throw errorFromAnswer(res.status, text, req);
        return { status: res.status, body: parseAnswer(spec.schema, res.status, text, req) };
      } finally {
        timed.done();
      }
    }
  }

  private send(spec: RequestSpec<z.ZodType>, signal: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = { Accept: "application/json", ...this.headers, ...spec.headers };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    let body: string | undefined;
    if (spec.body && "json" in spec.body) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(spec.body.json);
    } else if (spec.body) {
      headers["Content-Type"] = "application/yaml";
      body = spec.body.yaml;
    }
    const fetchFn = this.fetchFn;
    return fetchFn(this.url(spec.path, spec.query), { method: spec.method, headers, body, signal });
  }

  private url(p: string, query: RequestSpec<z.ZodType>["query"]): string {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) params.set(k, String(v));
    const qs = params.toString();
    return `${this.baseUrl}${p}${qs ? `?${qs}` : ""}`;
  }

  /** Full jitter over an exponential ceiling: many clients retrying at once spread out. */
  private backoff(attempt: number): number {
    const ceiling = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** attempt);
    return ceiling / 2 + (Math.random() * ceiling) / 2;
  }
}

function parseAnswer<S extends z.ZodType>(schema: S, status: number, text: string, req: { method: string; path: string }): z.output<S> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ParallelsError({ code: "bad_response", status, message: `${req.method} ${req.path} answered ${status} with a body that is not JSON: ${text.slice(0, 200)}`, ...req });
  }
  const parsed = schema.safeParse(json);
  if (parsed.success) return parsed.data;
  const details = parsed.error.issues.map((i) => ({ path: formatPath(i.path), message: i.message }));
  throw new ParallelsError({ code: "bad_response", status, message: `${req.method} ${req.path} answered ${status} with a body the client cannot read`, details, ...req });
}

/** `Retry-After` as seconds or an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === "") return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

const reason = (e: unknown): string => {
  if (!(e instanceof Error)) return String(e);
  // Node's fetch says "fetch failed" and keeps the reason (ECONNREFUSED, …) in `cause`.
  const cause = e.cause instanceof Error ? `: ${e.cause.message}` : "";
  return `${e.message}${cause}`;
};

/** Waits `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * The caller's signal joined with a per-attempt timeout. By hand rather than `AbortSignal.any`
 * and `AbortSignal.timeout`, which older browsers lack; the timer is cleared when the attempt ends
 * so it keeps no process (or Worker request) alive.
 */
function withTimeout(outer: AbortSignal | undefined, ms: number): { signal: AbortSignal; done: () => void } {
  const controller = new AbortController();
  const onAbort = () => controller.abort(outer!.reason);
  if (outer?.aborted) controller.abort(outer.reason);
  else outer?.addEventListener("abort", onAbort, { once: true });
  const timer = setTimeout(() => controller.abort(new DOMException(`no answer within ${ms} ms`, "TimeoutError")), ms);
  return {
    signal: controller.signal,
    done: () => {
      clearTimeout(timer);
      outer?.removeEventListener("abort", onAbort);
    },
  };
}
