// Input windows of scheduled runs, fixed by the control plane: `since: lastRun` starts where the
// previous successful run's window ended — across a failed run and a skipped tick — and every
// start message of a node carries its inputs' windows.
import { createExecutionContext, createScheduledController, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../control/src/index";
import { call, outboxRows, unique, workspace } from "./harness";

async function sha256(text: string) {
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function fire(at: number) {
  const ctx = createExecutionContext();
  await worker.scheduled(createScheduledController({ scheduledTime: at, cron: "* * * * *" }), env, ctx);
  await waitOnExecutionContext(ctx);
}

async function setup(window: unknown) {
  const ws = await workspace();
  const created = await call("POST", "/v1/clusters", { token: ws.admin, body: { name: "local", kind: "local" } });
  const credential = `plc_${unique("agent")}`;
  await env.DB.prepare("UPDATE clusters SET agent_credential_hash = ?, registered_at = ?, bootstrap_token_hash = NULL WHERE id = ?")
    .bind(await sha256(credential), Date.now(), created.body.cluster.id)
    .run();
  const dag = unique("micro");
  expect((await call("POST", "/v1/dags", { token: ws.write, body: { name: dag, nodes: [{ id: "infer", project: { uri: "x" }, inputs: { arrived: { uri: "incoming/", window } } }] } })).status).toBe(
    201,
  );
  const s = await call("POST", "/v1/schedules", { token: ws.write, body: { name: "every-minute", dag, cron: "* * * * *", overlapPolicy: "skip" } });
  return { ws, dag, credential, scheduleId: s.body.id as string };
}

const T0 = Date.UTC(2026, 5, 1, 12, 0);
const due = (id: string, at: number) => env.DB.prepare("UPDATE schedules SET next_run_at = ? WHERE id = ?").bind(at, id).run();

describe("input windows", () => {
  it("since lastRun: each run starts where the last successful one ended, across a failed run and a skipped tick", async () => {
    const { ws, dag, credential, scheduleId } = await setup({ since: "lastRun" });
    const end = (runId: string, type: "succeeded" | "failed") =>
      call("POST", "/v1/agent/events", { token: credential, body: { events: [{ nodeRunId: `${runId}-infer`, attempt: 1, seq: 1, type, at: Date.now() }] } });
    const windowOf = async (runId: string) => (await call("GET", `/v1/runs/${runId}`, { token: ws.read })).body.windows["infer.arrived"];
    const startOf = async (runId: string) => JSON.parse((await outboxRows(runId)).find((r) => r.msg_id === `${runId}-infer.1.start`)!.payload);
    const newest = async () => (await call("GET", `/v1/runs?dag=${dag}`, { token: ws.read })).body.items[0];

    await due(scheduleId, T0);
    await fire(T0);
    const first = await newest();
    expect(await windowOf(first.id)).toEqual({ from: new Date(0).toISOString(), to: new Date(T0).toISOString(), skipIfEmpty: true });
    expect((await startOf(first.id)).windows).toEqual({ arrived: { from: 0, to: T0, skipIfEmpty: true } });
    await end(first.id, "succeeded");

    // The second run fails for good: its window is not "taken".
    await due(scheduleId, T0 + 60_000);
    await fire(T0 + 60_000);
    const second = await newest();
    expect((await windowOf(second.id)).from).toBe(new Date(T0).toISOString());
    await end(second.id, "failed");

    // The third is still running when the fourth tick comes: that tick is skipped.
    await due(scheduleId, T0 + 120_000);
    await fire(T0 + 120_000);
    const third = await newest();
    expect(await windowOf(third.id)).toMatchObject({ from: new Date(T0).toISOString(), to: new Date(T0 + 120_000).toISOString() });
    await due(scheduleId, T0 + 180_000);
    await fire(T0 + 180_000);
    expect((await newest()).id).toBe(third.id);
    await end(third.id, "succeeded");

    await due(scheduleId, T0 + 240_000);
    await fire(T0 + 240_000);
    const fifth = await newest();
    expect(await windowOf(fifth.id)).toMatchObject({ from: new Date(T0 + 120_000).toISOString(), to: new Date(T0 + 240_000).toISOString() });
  });

  it("last 15m: the quarter of an hour before the run's time", async () => {
    const { ws, dag, scheduleId } = await setup({ last: "15m", skipIfEmpty: false });
    await due(scheduleId, T0);
    await fire(T0);
    const run = (await call("GET", `/v1/runs?dag=${dag}`, { token: ws.read })).body.items[0];
    expect(run.windows).toEqual({ "infer.arrived": { from: new Date(T0 - 900_000).toISOString(), to: new Date(T0).toISOString(), skipIfEmpty: false } });
  });
});
