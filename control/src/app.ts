/**
 * Wires the control plane's HTTP API together: the middleware every answer goes through, then the
 * route table (routes/), where each endpoint says who may call it and what it reads and answers.
 */
import { Hono } from "hono";
import { cors } from "hono/cors";
import { etag } from "hono/etag";
import { countingD1, getDb, type D1Calls } from "./db";
import type { AppEnv } from "./env";
import { publisherFor } from "./publisher";
import { errorBody, onError } from "./errors";
import { registerRoutes, ROUTES } from "./routes";

export function newApp(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.onError(onError);
  app.notFound((c) => c.json(errorBody("not_found", `no route for ${c.req.method} ${new URL(c.req.url).pathname}`), 404));

  app.use("*", async (c, next) => {
    const origins = (c.env.CORS_ORIGINS ?? "")
      .split(",")
      .map((o) => o.trim())
      .filter(Boolean);
    return cors({
      origin: (origin) => (origins.includes(origin) ? origin : null),
      allowHeaders: ["Authorization", "Content-Type", "Idempotency-Key", "If-None-Match"],
      allowMethods: ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
      // Clients read these: timings, a log's size (to follow it), when to retry, a run view's ETag (to poll it).
      exposeHeaders: ["Server-Timing", "X-Log-Size", "Retry-After", "ETag"],
      maxAge: 600,
    })(c, next);
  });

  // Request-scoped D1 access that counts round trips. Server-Timing reports them, and the time
  // spent in the isolate apart from waiting for D1 (an estimate of CPU time; benchmarked).
  app.use("*", async (c, next) => {
    const calls: D1Calls = { count: 0, waitMs: 0 };
    const start = performance.now();
    c.set("db", getDb(countingD1(c.env.DB, calls)));
    await next();
    const busy = Math.max(0, performance.now() - start - calls.waitMs);
    c.res.headers.append("Server-Timing", `d1;desc="round trips";dur=${calls.count}, d1wait;dur=${calls.waitMs.toFixed(2)}, cpu;desc="isolate time apart from D1";dur=${busy.toFixed(2)}`);
  });

  // Whatever a request wrote to the outbox is published right after it answers.
  app.use("/v1/*", async (c, next) => {
    await next();
    const publisher = c.req.method !== "GET" && c.res.status < 300 ? publisherFor(c.env) : null;
    if (publisher) c.executionCtx.waitUntil(publisher.kick().catch(() => undefined));
  });

  // A run view polled by the web UI: the answer's digest as its ETag, and 304 without a body when
  // the poller's If-None-Match still matches (nothing changed since its last look).
  app.use("/v1/runs/:id", etag());
  app.use("/v1/runs/:id/nodes/:node", etag());

  // Authentication, scopes, the 1 MiB body limit and validation are per route (routes/define.ts).
  registerRoutes(app, ROUTES);
  return app;
}
