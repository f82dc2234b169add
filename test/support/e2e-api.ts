/**
 * What an end-to-end test asks of the control plane, in one place: the API with a bearer token
 * (JSON in, status and JSON out), polling until something holds, a run until it ends, a DAG put
 * and run. The servers start in a test's `beforeAll`, so the base URL is read when a call is made.
 */
import { expect } from "vitest";
import { isTerminalRun } from "../../proto/status";

export interface Answer {
  status: number;
  body: any;
}

export interface WaitOptions {
  timeoutMs?: number;
  pollMs?: number;
  /** Added to a timeout's message: where to look (e.g. the agent's log file). */
  explain?: () => string;
}

/** Polls `fn` until it gives something truthy (a throw counts as not yet); throws after the timeout, naming `what`. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false>, opts: WaitOptions = {}): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${opts.explain ? ` (${opts.explain()})` : ""}`);
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 250));
  }
}

export interface E2eApi {
  call(method: string, path: string, body?: unknown): Promise<Answer>;
  /** `GET /v1/runs/{id}`'s body. */
  runOf(id: string): Promise<any>;
  /** The run once it is succeeded, failed or cancelled; a timeout's message holds its last state. */
  finished(id: string, timeoutMs?: number): Promise<any>;
  /** Puts the DAG `{name, nodes}` (plus `fields`, e.g. `onClusterLost`) and starts a run of it; the run's id. */
  submit(name: string, nodes: unknown[], fields?: Record<string, unknown>): Promise<string>;
}

export function e2eApi(opts: { url: () => string; token: string; explain?: () => string }): E2eApi {
  const call = async (method: string, path: string, body?: unknown): Promise<Answer> => {
    const res = await fetch(opts.url() + path, {
      method,
      headers: { authorization: `Bearer ${opts.token}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: await res.json() };
  };
  const runOf = async (id: string) => (await call("GET", `/v1/runs/${id}`)).body;
  return {
    call,
    runOf,
    finished: (id, timeoutMs = 120_000) =>
      waitFor(
        `run ${id} to finish`,
        async () => {
          const run = await runOf(id);
          return isTerminalRun(run.status) ? run : undefined;
        },
        { timeoutMs, ...(opts.explain ? { explain: opts.explain } : {}) },
      ).catch(async (e: Error) => {
        throw new Error(`${e.message}; the run: ${JSON.stringify(await runOf(id).catch(() => "unreadable"))}`);
      }),
    submit: async (name, nodes, fields = {}) => {
      const put = await call("PUT", `/v1/dags/${name}`, { ...fields, name, nodes });
      expect(put.status, JSON.stringify(put.body)).toBeLessThan(300);
      const run = await call("POST", "/v1/runs", { dag: name });
      expect(run.status, JSON.stringify(run.body)).toBe(201);
      return run.body.id as string;
    },
  };
}

/**
 * Fires the control plane's Cron Trigger once, as the minute ticker would (wrangler's
 * `/cdn-cgi/local/scheduled`), for a test that started it with `cronTriggers: false` to choose when.
 */
export async function fireCronTrigger(controlUrl: string, at = Date.now()): Promise<void> {
  const res = await fetch(`${controlUrl}/cdn-cgi/local/scheduled?${new URLSearchParams({ cron: "* * * * *", time: String(at) })}`);
  const text = await res.text();
  expect(res.ok, `the Cron Trigger answered ${res.status}: ${text}`).toBe(true);
}
