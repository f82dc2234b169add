import { createExecutionContext, createScheduledController, env, waitOnExecutionContext } from "cloudflare:test";
import worker from "../../control/src/index";
import { describe, expect, it } from "vitest";
import { call, sampleDag, unique, workspace } from "./harness";

async function setup() {
  const ws = await workspace();
  await call("POST", "/v1/clusters", { token: ws.admin, body: { name: "local", kind: "local" } });
  const dag = unique("batch");
  expect((await call("POST", "/v1/dags", { token: ws.write, body: sampleDag(dag) })).status).toBe(201);
  return { ws, dag };
}

/** Fires the Worker's Cron Trigger as Cloudflare would, at `at`. */
async function fire(at: number) {
  const ctx = createExecutionContext();
  await worker.scheduled(createScheduledController({ scheduledTime: at, cron: "* * * * *" }), env, ctx);
  await waitOnExecutionContext(ctx);
}

const makeDue = (id: string, at: number) => env.DB.prepare("UPDATE schedules SET next_run_at = ? WHERE id = ?").bind(at, id).run();
const runsOf = async (token: string, dag: string) => (await call("GET", `/v1/runs?dag=${dag}`, { token })).body.items as any[];

describe("schedules", () => {
  it("creates, lists, pauses, resumes and deletes a schedule", async () => {
    const { ws, dag } = await setup();
    const res = await call("POST", "/v1/schedules", { token: ws.write, body: { name: "hourly", dag, cron: "0 * * * *", timezone: "Europe/Paris", params: { lang: "de" } } });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ name: "hourly", dag, overlapPolicy: "skip", enabled: true, params: { lang: "de" } });
    expect(new Date(res.body.nextRunAt).getUTCMinutes()).toBe(0);
    expect(Date.parse(res.body.nextRunAt)).toBeGreaterThan(Date.now());
    expect((await call("GET", "/v1/schedules", { token: ws.read })).body.items).toHaveLength(1);
    expect((await call("PATCH", "/v1/schedules/hourly", { token: ws.write, body: { enabled: false } })).body.enabled).toBe(false);
    expect((await call("PATCH", "/v1/schedules/hourly", { token: ws.write, body: { enabled: true } })).body.enabled).toBe(true);
    // The DAG cannot be deleted while a schedule uses it.
    expect((await call("DELETE", `/v1/dags/${dag}`, { token: ws.write })).status).toBe(409);
    expect((await call("DELETE", "/v1/schedules/hourly", { token: ws.write })).status).toBe(200);
    expect((await call("GET", "/v1/schedules/hourly", { token: ws.read })).status).toBe(404);
  });

  it("refuses bad cron expressions, time zones, unknown DAGs and undeclared params, storing nothing", async () => {
    const { ws, dag } = await setup();
    const cron = await call("POST", "/v1/schedules", { token: ws.write, body: { name: "s", dag, cron: "61 * * * *" } });
    expect(cron.status).toBe(400);
    expect(cron.body.error.details[0]).toEqual({ path: "cron", message: "Invalid value for minute: 61" });
    const fields = await call("POST", "/v1/schedules", { token: ws.write, body: { name: "s", dag, cron: "*/10 * * * * *" } });
    expect(fields.body.error.details[0].message).toMatch(/expected 5 fields/);
    const tz = await call("POST", "/v1/schedules", { token: ws.write, body: { name: "s", dag, cron: "0 * * * *", timezone: "Mars/Olympus" } });
    expect(tz.status).toBe(400);
    expect(tz.body.error.details[0].path).toBe("timezone");
    expect((await call("POST", "/v1/schedules", { token: ws.write, body: { name: "s", dag: "nope", cron: "0 * * * *" } })).status).toBe(404);
    const params = await call("POST", "/v1/schedules", { token: ws.write, body: { name: "s", dag, cron: "0 * * * *", params: { x: 1 } } });
    expect(params.status).toBe(422);
    expect((await call("GET", "/v1/schedules", { token: ws.read })).body.items).toEqual([]);
  });

  it("creates the due run when the Cron Trigger fires, once per occurrence even if fired twice", async () => {
    const { ws, dag } = await setup();
    const s = await call("POST", "/v1/schedules", { token: ws.write, body: { name: "every5", dag, cron: "*/5 * * * *", params: { lang: "nl" } } });
    const due = Date.UTC(2026, 0, 1, 12, 5);
    await makeDue(s.body.id, due);
    await fire(due + 1_000);
    // At-least-once: the same occurrence again must not make a second run.
    await makeDue(s.body.id, due);
    await fire(due + 2_000);
    const runs = await runsOf(ws.read, dag);
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ scheduleId: s.body.id, status: "running", params: { lang: "nl" } });
    const after = (await call("GET", "/v1/schedules/every5", { token: ws.read })).body;
    expect(after.lastRunId).toBe(runs[0].id);
    expect(after.nextRunAt).toBe(new Date(Date.UTC(2026, 0, 1, 12, 10)).toISOString());
  });

  it("skips an occurrence while the previous run is active (overlap policy skip)", async () => {
    const { ws, dag } = await setup();
    const s = await call("POST", "/v1/schedules", { token: ws.write, body: { name: "skipper", dag, cron: "* * * * *", overlapPolicy: "skip" } });
    const t0 = Date.UTC(2026, 0, 1, 12, 0);
    await makeDue(s.body.id, t0);
    await fire(t0);
    await makeDue(s.body.id, t0 + 60_000);
    await fire(t0 + 60_000);
    expect(await runsOf(ws.read, dag)).toHaveLength(1);
  });

  it("holds an occurrence while the previous run is active and starts it when that run ends (overlap policy queue)", async () => {
    const { ws, dag } = await setup();
    const s = await call("POST", "/v1/schedules", { token: ws.write, body: { name: "queuer", dag, cron: "* * * * *", overlapPolicy: "queue" } });
    const t0 = Date.UTC(2026, 0, 1, 12, 0);
    await makeDue(s.body.id, t0);
    await fire(t0);
    await makeDue(s.body.id, t0 + 60_000);
    await fire(t0 + 60_000);
    const [second, first] = await runsOf(ws.read, dag);
    expect(first.status).toBe("running");
    expect(second.status).toBe("queued");
    expect((await call("GET", `/v1/runs/${second.id}`, { token: ws.read })).body.counters.dispatched).toBe(0);
    // The first run ends (its only active node reports cancelled), the next tick releases the held run.
    await call("POST", `/v1/runs/${first.id}/cancel`, { token: ws.write });
    await env.DB.prepare("UPDATE node_runs SET status = 'cancelled' WHERE run_id = ?").bind(first.id).run();
    await env.DB.prepare("UPDATE dag_runs SET status = 'cancelled' WHERE id = ?").bind(first.id).run();
    await fire(t0 + 90_000);
    const released = (await call("GET", `/v1/runs/${second.id}`, { token: ws.read })).body;
    expect(released.status).toBe("running");
    expect(released.counters.dispatched).toBe(1);
  });
});
