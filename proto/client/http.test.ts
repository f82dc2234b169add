/**
 * The SDK's transport against what stands between it and the control plane: a real HTTP server on
 * 127.0.0.1 playing a proxy or rate limiter (the control plane itself never answers 429, and 503
 * only to agents), which answers 429/503 with `Retry-After`, drops connections, or sends pages
 * that are not the API's. The API's own answers are covered end to end (test/node/sdk.test.ts).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { isParallelsError, ParallelsClient, type ParallelsError, type RetryOptions } from ".";
import { retryAfterMs } from "./http";

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;
let server: Server;
let baseUrl: string;
/** Answers the n-th request (from 1); every request is recorded. */
let handle: Handler;
let seen: { method: string; url: string; key: string | undefined; auth: string | undefined; at: number }[];

const cluster = { id: "c1", name: "lab", kind: "generic", labels: {}, status: "online", registeredAt: null, lastHeartbeatAt: null, agent: null, createdAt: "2026-11-30T00:00:00.000Z" };
const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) =>
  res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(body));
const client = (retry: RetryOptions = { baseDelayMs: 20 }) => new ParallelsClient({ baseUrl, token: "t", retry });
const caught = (p: Promise<unknown>) =>
  p.then(
    () => expect.fail("expected an error"),
    (e: unknown) => e as ParallelsError,
  );

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push({ method: req.method!, url: req.url!, key: req.headers["idempotency-key"] as string | undefined, auth: req.headers.authorization, at: Date.now() });
    req.resume();
    req.on("end", () => handle(req, res, seen.length));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  baseUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(() => new Promise((r) => server.close(r)));
beforeEach(() => {
  seen = [];
});

describe("retries", () => {
  it("waits as Retry-After says on 503, then reads the answer", async () => {
    handle = (_req, res, n) => (n === 1 ? json(res, 503, {}, { "Retry-After": "1" }) : json(res, 200, cluster));
    expect(await client().clusters.get("lab")).toMatchObject({ name: "lab" });
    expect(seen).toHaveLength(2);
    expect(seen[1]!.at - seen[0]!.at).toBeGreaterThanOrEqual(950);
  });

  it("retries a 429 even for a request that is not idempotent: it was not carried out", async () => {
    handle = (_req, res, n) => (n < 3 ? json(res, 429, {}) : json(res, 201, { cluster, bootstrap: { token: "plb_x", expiresAt: "2026-11-30T01:00:00.000Z", helmInstall: "helm …" } }));
    expect((await client().clusters.create({ name: "lab", kind: "generic" })).bootstrap.token).toBe("plb_x");
    expect(seen.map((s) => s.method)).toEqual(["POST", "POST", "POST"]);
  });

  it("gives up after maxRetries with the status's code", async () => {
    handle = (_req, res) => json(res, 503, {});
    const e = await caught(client({ baseDelayMs: 5, maxRetries: 2 }).clusters.get("lab"));
    expect(e).toMatchObject({ name: "ParallelsError", code: "unavailable", status: 503, method: "GET", path: "/v1/clusters/lab" });
    expect(seen).toHaveLength(3);
  });

  it("retries a dropped connection only when the request is idempotent", async () => {
    handle = (req, res, n) => (n === 1 ? req.socket.destroy() : json(res, 200, cluster));
    expect(await client().clusters.get("lab")).toMatchObject({ name: "lab" });
    expect(seen).toHaveLength(2);

    seen = [];
    handle = (req) => req.socket.destroy();
    const e = await caught(client().clusters.create({ name: "lab", kind: "generic" }));
    expect(e).toMatchObject({ code: "network_error", status: 0, method: "POST", path: "/v1/clusters" });
    expect(seen).toHaveLength(1);
  });

  it("a submit is retried after a dropped connection with the same Idempotency-Key", async () => {
    const run = {
      id: "r1",
      dag: "d",
      dagVersion: 1,
      status: "queued",
      params: {},
      cancelRequested: false,
      scheduleId: null,
      resumedFrom: null,
      windows: null,
      mlflowRunId: null,
      mlflowUrl: null,
      mlflowNote: null,
      createdAt: "x",
      startedAt: null,
      finishedAt: null,
    };
    handle = (req, res, n) => (n === 1 ? req.socket.destroy() : json(res, 201, run));
    expect(await client().runs.submit({ dag: "d" })).toMatchObject({ id: "r1", created: true });
    expect(seen).toHaveLength(2);
    expect(seen[0]!.key).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(seen[1]!.key).toBe(seen[0]!.key);
  });

  it("an abort stops the waiting at once, with the signal's reason", async () => {
    handle = (_req, res) => json(res, 503, {}, { "Retry-After": "10" });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const started = Date.now();
    const e = await client()
      .clusters.get("lab", { signal: controller.signal })
      .catch((err: unknown) => err);
    expect((e as Error).name).toBe("AbortError");
    expect(isParallelsError(e)).toBe(false);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

describe("answers that are not the API's", () => {
  it("an HTML error page gets its status's code and the start of its text", async () => {
    handle = (_req, res) => res.writeHead(502, { "content-type": "text/html" }).end("<html>Bad gateway</html>");
    const e = await caught(client().dags.list().page());
    expect(e).toMatchObject({ code: "unavailable", status: 502, message: "HTTP 502 from GET /v1/dags: <html>Bad gateway</html>", details: [] });
  });

  it("a success of the wrong shape is bad_response, with the path of each problem", async () => {
    handle = (_req, res) => json(res, 200, { ...cluster, status: "sleeping", createdAt: undefined });
    const e = await caught(client().clusters.get("lab"));
    expect(e.code).toBe("bad_response");
    expect(e.details.map((d) => d.path).sort()).toEqual(["createdAt", "status"]);
  });

  it("the API's error body is taken as it is: code, message, every problem's path", async () => {
    const details = [
      { path: "name", message: "must be a DNS-1123 label" },
      { path: "nodes[0].inputs.p", message: 'unknown node "missing"' },
    ];
    handle = (_req, res) => json(res, 422, { error: { code: "invalid_dag", message: "the DAG has 2 problems", details } });
    const e = await caught(client().dags.validate("name: Bad_Name\n"));
    expect(e).toMatchObject({ code: "invalid_dag", status: 422, message: "the DAG has 2 problems", details });
    expect(seen).toHaveLength(1);
  });
});

describe("the client's options", () => {
  it("sends through an injected fetch (a service binding, an auth proxy), with the token and the base URL's prefix", async () => {
    handle = (_req, res) => json(res, 200, { items: [], nextCursor: null });
    const urls: string[] = [];
    const viaProxy = new ParallelsClient({
      baseUrl: `${baseUrl}/parallels/`,
      token: "secret",
      fetch: (url, init) => {
        urls.push(url);
        return fetch(url, init);
      },
    });
    expect(await viaProxy.runs.list({ dag: "wordcount", limit: 5 }).toArray()).toEqual([]);
    expect(urls).toEqual([`${baseUrl}/parallels/v1/runs?dag=wordcount&limit=5`]);
    expect(seen.map((s) => [s.url, s.auth])).toEqual([["/parallels/v1/runs?dag=wordcount&limit=5", "Bearer secret"]]);
  });
});

describe("Retry-After", () => {
  it("reads seconds and HTTP dates; ignores what it cannot read", () => {
    const now = Date.parse("2026-11-30T12:00:00Z");
    expect(retryAfterMs("3", now)).toBe(3000);
    expect(retryAfterMs("Mon, 30 Nov 2026 12:00:05 GMT", now)).toBe(5000);
    expect(retryAfterMs("Mon, 30 Nov 2026 11:00:00 GMT", now)).toBe(0);
    expect(retryAfterMs("soon", now)).toBeUndefined();
    expect(retryAfterMs(null, now)).toBeUndefined();
  });
});
