/**
 * Talks to the control plane running inside workerd (SELF) with the real D1 migrations.
 * Each test makes its own workspace, so tests never see each other's objects.
 */
import { env, SELF } from "cloudflare:test";
import { expect } from "vitest";
import { ROUTES } from "../../control/src/routes";
import { errorsOf, pathPattern } from "../../control/src/routes/define";
import { ErrorBodySchema, STATUS_OF } from "../../proto/errors";

export const ROOT_TOKEN = env.PARALLELS_ADMIN_TOKEN!;
const BASE = "https://control.test";

export interface Answer<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export interface CallOptions {
  token?: string | null;
  body?: unknown;
  /** Sent as-is (for malformed bodies and YAML). */
  raw?: string;
  headers?: Record<string, string>;
}

export async function call<T = any>(method: string, path: string, opts: CallOptions = {}): Promise<Answer<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  const token = opts.token === undefined ? ROOT_TOKEN : opts.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  let body: string | undefined;
  if (opts.raw !== undefined) body = opts.raw;
  else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers["content-type"] ??= "application/json";
  }
  const res = await SELF.fetch(BASE + path, { method, headers, body });
  const text = await res.text();
  const answer = { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
  expectDocumented(method, path, answer);
  return answer;
}

/**
 * Every answer a test gets is held to the route table, which the OpenAPI document is written
 * from: a status the route documents, with a body of the schema documented for it (or the error
 * shape). So the whole suite checks the document too, on the requests it makes by hand.
 */
function expectDocumented(method: string, path: string, answer: Answer) {
  const pathname = new URL(BASE + path).pathname;
  const atPath = ROUTES.filter((r) => pathPattern(r.def.path).test(pathname));
  const route = atPath.find((r) => r.def.method.toUpperCase() === (method === "HEAD" ? "GET" : method));
  if (!route) {
    // Unknown path: 404. Known path, another method: 405 with the methods it has.
    expect(answer.status, `${method} ${pathname}`).toBe(atPath.length === 0 ? 404 : 405);
    return;
  }
  const what = `${method} ${route.def.path} answered ${answer.status} ${JSON.stringify(answer.body)?.slice(0, 300)}`;
  const ok = route.def.ok[answer.status];
  if (ok) {
    if (method === "HEAD") return;
    const parsed = ok.schema.safeParse(answer.body);
    expect(parsed.success, `${what}: not its documented schema: ${parsed.error?.message}`).toBe(true);
    return;
  }
  expect(
    errorsOf(route.def).map((code) => STATUS_OF[code]),
    `${what}: an undocumented status`,
  ).toContain(answer.status);
  expect(ErrorBodySchema.safeParse(answer.body).success, `${what}: not the error shape`).toBe(true);
}

let counter = 0;
export const unique = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${(counter++).toString(36)}`;

/** A fresh workspace with tokens of every scope. */
export async function workspace() {
  const created = await call("POST", "/v1/workspaces", { body: { name: unique("ws") } });
  expect(created.status).toBe(201);
  const admin: string = created.body.adminToken;
  const mint = async (scope: string) => {
    const r = await call("POST", "/v1/tokens", { token: admin, body: { name: scope, scope } });
    expect(r.status).toBe(201);
    return r.body.token as string;
  };
  return { id: created.body.workspace.id as string, admin, write: await mint("write"), read: await mint("read") };
}

/** The round trips a request made to D1, from its Server-Timing header. */
export function d1RoundTrips(headers: Headers): number {
  const m = /d1;desc="round trips";dur=(\d+)/.exec(headers.get("server-timing") ?? "");
  if (!m) throw new Error("no d1 Server-Timing entry");
  return Number(m[1]);
}

/** A small valid DAG: prep → count (4 partitions) → merge. */
export function sampleDag(name: string, extra: Record<string, unknown> = {}) {
  return {
    name,
    description: "word count",
    params: { lang: "en" },
    nodes: [
      { id: "prep", project: { uri: "examples/wordcount/split" }, parameters: { parts: 4, note: "lang=${params.lang}" }, env: { LANG_CODE: "${params.lang}" } },
      {
        id: "count",
        project: { uri: "examples/wordcount/count" },
        inputs: { parts: { node: "prep", path: "parts" } },
        partition: { by: "object", input: "parts" },
        parallelism: 4,
        retries: 1,
      },
      { id: "merge", project: { uri: "examples/wordcount/merge" }, inputs: { counts: { node: "count" } } },
    ],
    ...extra,
  };
}

/** A DAG of `n` nodes: a chain of roots fanning into one sink, for size-independence checks. */
export function wideDag(name: string, n: number) {
  const nodes: Record<string, unknown>[] = [];
  for (let i = 0; i < n - 1; i++) nodes.push({ id: `n${i}`, project: { uri: "examples/noop" } });
  nodes.push({ id: "sink", project: { uri: "examples/noop" }, after: nodes.slice(0, Math.min(50, n - 1)).map((x) => x.id) });
  return { name, nodes };
}

export async function outboxRows(runId: string) {
  const { results } = await env.DB.prepare("SELECT msg_id, subject, payload, sent_at FROM outbox WHERE msg_id LIKE ? ORDER BY seq").bind(`${runId}-%`).all<{
    msg_id: string;
    subject: string;
    payload: string;
    sent_at: number | null;
  }>();
  return results;
}
