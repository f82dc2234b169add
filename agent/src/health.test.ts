import { describe, expect, it } from "vitest";
import { healthReport, serveHealth } from "./health";
import { createLogger } from "./log";
import { createMetrics } from "./metrics";

describe("/healthz", () => {
  const state = (connected: boolean, last: number | null) => ({ natsConnected: () => connected, lastPullAt: () => last });

  it("fails when NATS is disconnected or nothing was pulled for longer than the limit", () => {
    const now = 1_000_000;
    expect(healthReport({ state: state(true, now - 5_000), unhealthyAfterMs: 90_000 }, now)).toEqual({ ok: true, natsConnected: true, lastPullAgeSeconds: 5, problems: [] });
    expect(healthReport({ state: state(false, now - 5_000), unhealthyAfterMs: 90_000 }, now).problems).toEqual(["not connected to NATS"]);
    expect(healthReport({ state: state(true, now - 91_000), unhealthyAfterMs: 90_000 }, now).problems).toEqual(["nothing pulled from NATS for 91 s (limit 90 s)"]);
    // Before the first pull, the start time counts (a grace period), then it fails.
    expect(healthReport({ state: state(true, null), unhealthyAfterMs: 90_000, startedAt: now - 10_000 }, now).ok).toBe(true);
    expect(healthReport({ state: state(true, null), unhealthyAfterMs: 90_000, startedAt: now - 100_000 }, now).ok).toBe(false);
  });

  it("serves /healthz (200/503) and /metrics on 127.0.0.1, and stops on abort", async () => {
    let connected = true;
    const metrics = createMetrics();
    metrics.sources.runningAttempts = () => 3;
    const ac = new AbortController();
    let port = 0;
    const served = serveHealth(
      { host: "127.0.0.1", port: 0, state: { natsConnected: () => connected, lastPullAt: () => Date.now() }, metrics, unhealthyAfterMs: 1000, logger: createLogger({ level: "silent" }) },
      ac.signal,
      (p) => (port = p),
    );
    while (!port) await new Promise((r) => setTimeout(r, 5));
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    connected = false;
    const bad = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(bad.status).toBe(503);
    expect(await bad.json()).toMatchObject({ ok: false, problems: ["not connected to NATS"] });
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(text).toMatch(/parallels_agent_running_attempts 3/);
    expect(text).toMatch(/parallels_agent_process_resident_memory_bytes \d+/);
    ac.abort();
    await served;
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  });
});
