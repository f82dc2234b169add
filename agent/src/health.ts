/**
 * `/healthz` and `/metrics` on a small node:http server (127.0.0.1 by default). `/healthz`
 * fails (503) when NATS is disconnected or nothing was pulled for a while: a wedged agent that
 * leaves work queued gets restarted instead of sitting there.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Clock } from "./backoff";
import type { Logger } from "./log";
import type { Metrics } from "./metrics";

export interface HealthState {
  natsConnected(): boolean;
  /** Epoch ms of the last successful pull, or null before the first. */
  lastPullAt(): number | null;
}

export interface HealthOptions {
  host: string;
  port: number;
  state: HealthState;
  metrics: Metrics;
  unhealthyAfterMs: number;
  /** Grace after start before "never pulled" counts as unhealthy (default: unhealthyAfterMs). */
  startedAt?: number;
  logger: Logger;
  clock?: Clock;
}

export interface HealthReport {
  ok: boolean;
  natsConnected: boolean;
  lastPullAgeSeconds: number | null;
  problems: string[];
}

export function healthReport(o: Pick<HealthOptions, "state" | "unhealthyAfterMs" | "startedAt">, now: number): HealthReport {
  const problems: string[] = [];
  const connected = o.state.natsConnected();
  if (!connected) problems.push("not connected to NATS");
  const last = o.state.lastPullAt() ?? o.startedAt ?? null;
  const age = last === null ? null : Math.max(0, now - last);
  if (age === null || age > o.unhealthyAfterMs) {
    problems.push(`nothing pulled from NATS for ${age === null ? "ever" : `${Math.round(age / 1000)} s`} (limit ${Math.round(o.unhealthyAfterMs / 1000)} s)`);
  }
  const pulled = o.state.lastPullAt();
  return { ok: problems.length === 0, natsConnected: connected, lastPullAgeSeconds: pulled === null ? null : Math.round((now - pulled) / 100) / 10, problems };
}

/** Serves until `signal` aborts. `onListening` gets the bound port (useful with port 0). */
export async function serveHealth(o: HealthOptions, signal: AbortSignal, onListening?: (port: number) => void): Promise<void> {
  const clock = o.clock ?? Date.now;
  const startedAt = o.startedAt ?? clock();
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    if (path === "/healthz" || path === "/readyz") {
      const report = healthReport({ ...o, startedAt }, clock());
      res.writeHead(report.ok ? 200 : 503, { "content-type": "application/json" }).end(JSON.stringify(report));
      return;
    }
    if (path === "/metrics") {
      o.metrics.registry.metrics().then(
        (text) => res.writeHead(200, { "content-type": o.metrics.registry.contentType }).end(text),
        (err: Error) => res.writeHead(500, { "content-type": "text/plain" }).end(err.message),
      );
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" }).end("not found: try /healthz or /metrics\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port, o.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  o.logger.info({ url: `http://${o.host}:${port}` }, "serving /healthz and /metrics");
  onListening?.(port);
  if (!signal.aborted) await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}
