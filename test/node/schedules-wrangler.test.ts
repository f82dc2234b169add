/**
 * Schedules fire on the embedded default: under `wrangler dev` (which never runs a Worker's
 * `scheduled` handler by itself) the launcher's cron ticker fires wrangler.toml's Cron Trigger
 * every minute, and a schedule `* * * * *` creates one run per minute — this test never calls
 * the handler itself. Takes up to about two minutes: it waits for two real minute boundaries.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startControlPlane, type ControlPlane } from "../../scripts/local/control-plane";
import { cronTriggersOf } from "../../scripts/local/cron-ticker";
import { ROOT } from "../../scripts/local/control-plane";

const TOKEN = "schedules-wrangler-token";
let cp: ControlPlane;
let state: string;

async function api(method: string, path: string, body?: unknown) {
  const res = await fetch(cp.url + path, { method, headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as any };
}

beforeAll(async () => {
  state = mkdtempSync(join(tmpdir(), "parallels-schedules-"));
  // No NATS: the runs' work waits in the outbox, which is not what this test looks at.
  cp = await startControlPlane({ stateDir: state, vars: { PARALLELS_ADMIN_TOKEN: TOKEN }, cronTriggers: true });
}, 120_000);

afterAll(async () => {
  await cp?.stop();
  if (state) rmSync(state, { recursive: true, force: true });
});

describe("schedules under wrangler dev", () => {
  it("reads the Cron Trigger of wrangler.toml", () => {
    expect(cronTriggersOf(join(ROOT, "wrangler.toml"))).toEqual(["* * * * *"]);
  });

  it("a schedule `* * * * *` creates a run within about a minute, and the next one a minute later", { timeout: 200_000 }, async () => {
    expect((await api("POST", "/v1/clusters", { name: "local", kind: "local" })).status).toBe(201);
    expect((await api("POST", "/v1/dags", { name: "tick", nodes: [{ id: "a", project: { uri: "." } }] })).status).toBe(201);
    const created = await api("POST", "/v1/schedules", { name: "every-minute", dag: "tick", cron: "* * * * *" });
    expect(created.status).toBe(201);
    const firstDue = Date.parse(created.body.nextRunAt);
    expect(firstDue % 60_000).toBe(0);

    const runs = async () => (await api("GET", "/v1/runs?dag=tick")).body.items as { id: string; status: string; scheduleId: string | null; createdAt: string }[];
    const deadline = firstDue + 60_000 + 45_000;
    let seen = await runs();
    while (seen.length < 2 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 1000));
      seen = await runs();
      // No agent runs this work: end the first run, or the overlap policy (skip) drops the next occurrence.
      if (seen.length === 1 && seen[0]!.status !== "cancelled") expect((await api("POST", `/v1/runs/${seen[0]!.id}/cancel?force=true`)).status).toBe(200);
    }
    expect(
      seen.map((r) => r.scheduleId),
      `runs: ${JSON.stringify(seen)}; ticks: ${JSON.stringify(cp.cron?.fired)}`,
    ).toEqual([created.body.id, created.body.id]);
    // Newest first: each run was made by the tick of its own minute, one minute apart.
    const [second, first] = seen.map((r) => Date.parse(r.createdAt));
    expect(first! - firstDue).toBeGreaterThanOrEqual(0);
    expect(first! - firstDue).toBeLessThan(30_000);
    expect(second! - first!).toBeGreaterThan(30_000);
    expect(second! - first!).toBeLessThan(90_000);
    const schedule = (await api("GET", "/v1/schedules/every-minute")).body;
    expect(Date.parse(schedule.nextRunAt)).toBeGreaterThanOrEqual(firstDue + 120_000);
    expect(schedule.lastRunId).toBe(seen[0]!.id);
    expect(cp.cron!.fired.filter((f) => f.ok).length).toBeGreaterThanOrEqual(2);
  });
});
