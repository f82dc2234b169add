/**
 * The agent's HTTP client for the control plane (ARCHITECTURE §5): register, heartbeat, events,
 * cache lookups.
 * Answers are parsed with the proto/ schemas; failures become {@link ControlPlaneError}, which
 * says whether retrying can help.
 */
import type { z } from "zod";
import { AgentRegistered, CacheLookupAnswer, EventBatchResult, HeartbeatAnswer, type AgentRegister, type CacheLookup, type EventBatch, type Heartbeat } from "../../proto/agent";
import { ErrorBodySchema, type ProblemDetail } from "../../proto/errors";

export class ControlPlaneError extends Error {
  constructor(
    message: string,
    /** HTTP status, or null when no answer came (network, timeout). */
    readonly status: number | null,
    readonly code: string | null = null,
    readonly details: ProblemDetail[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "ControlPlaneError";
  }

  /** No answer, a timeout, rate limiting or a server-side failure: the same request may succeed later. */
  get retryable(): boolean {
    return this.status === null || this.status === 408 || this.status === 429 || this.status >= 500;
  }
}

/**
 * An error's message with its causes': fetch says only "fetch failed", its cause says why
 * (ECONNREFUSED, a certificate not trusted, "Proxy response (407) !== 200 when HTTP Tunneling").
 */
export function withCauses(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    const text = e instanceof Error ? e.message : String(e);
    parts.push(typeof code === "string" && !text.includes(code) ? `${text} (${code})` : text);
  }
  return parts.join(": ");
}

export interface ControlPlaneClient {
  register(body: AgentRegister): Promise<AgentRegistered>;
  heartbeat(credential: string, body: Heartbeat): Promise<HeartbeatAnswer>;
  events(credential: string, batch: EventBatch): Promise<EventBatchResult>;
  cache(credential: string, ask: CacheLookup): Promise<CacheLookupAnswer>;
}

export function createControlPlaneClient(opts: { baseUrl: string; fetch?: typeof fetch; timeoutMs?: number; userAgent?: string }): ControlPlaneClient {
  const doFetch = opts.fetch ?? globalThis.fetch;
  const timeoutMs = opts.timeoutMs ?? 15_000;

  async function post<S extends z.ZodType>(path: string, body: unknown, schema: S, credential?: string): Promise<z.infer<S>> {
    const url = `${opts.baseUrl}${path}`;
    let res: Response;
    try {
      res = await doFetch(url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...(credential ? { authorization: `Bearer ${credential}` } : {}),
          ...(opts.userAgent ? { "user-agent": opts.userAgent } : {}),
        },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      throw new ControlPlaneError(`POST ${path}: no answer from ${opts.baseUrl}: ${withCauses(err)}`, null, null, [], { cause: err });
    }
    const text = await res.text().catch(() => "");
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      /* not JSON: reported below */
    }
    if (!res.ok) {
      const parsed = ErrorBodySchema.safeParse(json);
      const message = parsed.success ? parsed.data.error.message : text.slice(0, 200) || res.statusText;
      throw new ControlPlaneError(`POST ${path}: ${res.status} ${message}`, res.status, parsed.success ? parsed.data.error.code : null, parsed.success ? parsed.data.error.details : []);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) throw new ControlPlaneError(`POST ${path}: unexpected answer: ${parsed.error.message}`, res.status);
    return parsed.data;
  }

  return {
    register: (body) => post("/v1/agent/register", body, AgentRegistered),
    heartbeat: (credential, body) => post("/v1/agent/heartbeat", body, HeartbeatAnswer, credential),
    events: (credential, batch) => post("/v1/agent/events", batch, EventBatchResult, credential),
    cache: (credential, ask) => post("/v1/agent/cache", ask, CacheLookupAnswer, credential),
  };
}
