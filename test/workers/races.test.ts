/**
 * Requests that decide on the same run at the same time: two agents' events, a cancel and an
 * event. Every decision claims the run's state token, so a stale one writes nothing and is made
 * again on a fresh read; these tests fail without that (runs stuck `running` for ever).
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { call, outboxRows, unique, workspace } from "./harness";

async function sha256(text: string) {
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function cluster(ws: { admin: string }, name: string) {
  const created = await call("POST", "/v1/clusters", { token: ws.admin, body: { name, kind: "local" } });
  const credential = `plc_${unique("agent")}`;
  await env.DB.prepare("UPDATE clusters SET agent_credential_hash = ?, registered_at = ?, bootstrap_token_hash = NULL WHERE id = ?")
    .bind(await sha256(credential), Date.now(), created.body.cluster.id)
    .run();
  return credential;
}

const ev = (nodeRunId: string, type: string) => ({ nodeRunId, attempt: 1, seq: 1, type, at: Date.now() });
const report = (credential: string, nodeRunId: string, type: string) => call("POST", "/v1/agent/events", { token: credential, body: { events: [ev(nodeRunId, type)] } });

async function submit(ws: { write: string }, nodes: unknown[]) {
  const dag = unique("race");
  expect((await call("POST", "/v1/dags", { token: ws.write, body: { name: dag, nodes } })).status).toBe(201);
  return (await call("POST", "/v1/runs", { token: ws.write, body: { dag } })).body.id as string;
}

const state = async (token: string, id: string) => {
  const run = (await call("GET", `/v1/runs/${id}`, { token })).body;
  return { status: run.status, nodes: Object.fromEntries(run.nodes.map((n: any) => [n.nodeId, n.status])) };
};

describe("concurrent decisions on one run", () => {
  it("dispatches a join node when its two inputs end at the same moment on two clusters", async () => {
    for (let i = 0; i < 3; i++) {
      const ws = await workspace();
      const [a, b] = [await cluster(ws, "ca"), await cluster(ws, "cb")];
      const id = await submit(ws, [
        { id: "a", project: { uri: "p" }, cluster: "ca" },
        { id: "b", project: { uri: "p" }, cluster: "cb" },
        { id: "c", project: { uri: "p" }, cluster: "ca", after: ["a", "b"] },
      ]);
      const answers = await Promise.all([report(a, `${id}-a`, "succeeded"), report(b, `${id}-b`, "succeeded")]);
      expect(answers.map((r) => r.status)).toEqual([200, 200]);
      expect(await state(ws.read, id)).toEqual({ status: "running", nodes: { a: "succeeded", b: "succeeded", c: "dispatched" } });
      expect((await outboxRows(id)).filter((r) => r.msg_id === `${id}-c.1.start`)).toHaveLength(1);
    }
  });

  it("ends a run whose last two nodes end at the same moment, and tells the agents", async () => {
    const ws = await workspace();
    const [a, b] = [await cluster(ws, "ca"), await cluster(ws, "cb")];
    const id = await submit(ws, [
      { id: "a", project: { uri: "p" }, cluster: "ca" },
      { id: "b", project: { uri: "p" }, cluster: "cb" },
    ]);
    const answers = await Promise.all([report(a, `${id}-a`, "succeeded"), report(b, `${id}-b`, "succeeded")]);
    expect(await state(ws.read, id)).toEqual({ status: "succeeded", nodes: { a: "succeeded", b: "succeeded" } });
    // Whichever request ended the run says so to its agent (to close the MLflow parent run).
    expect(answers.flatMap((r) => r.body.endedRuns)).toContainEqual({ runId: id, status: "succeeded" });
  });

  it("a cancel racing a node's end never leaves a started node without a cancel, nor the run stuck", async () => {
    for (let i = 0; i < 3; i++) {
      const ws = await workspace();
      const agent = await cluster(ws, "ca");
      const id = await submit(ws, [
        { id: "a", project: { uri: "p" } },
        { id: "c", project: { uri: "p" }, after: ["a"] },
      ]);
      await Promise.all([call("POST", `/v1/runs/${id}/cancel`, { token: ws.write }), report(agent, `${id}-a`, "succeeded")]);
      const msgs = (await outboxRows(id)).map((r) => r.msg_id);
      const s = await state(ws.read, id);
      if (msgs.includes(`${id}-c.1.start`)) {
        // c was dispatched before the cancel was decided: it must get a cancel, and the run waits for it.
        expect(msgs).toContain(`${id}-c.1.cancel`);
        expect(s).toEqual({ status: "cancelling", nodes: { a: "succeeded", c: "dispatched" } });
        await report(agent, `${id}-c`, "cancelled");
        expect((await state(ws.read, id)).status).toBe("cancelled");
      } else {
        expect(s).toEqual({ status: "cancelled", nodes: { a: "succeeded", c: "cancelled" } });
      }
    }
  });

  it("refuses to delete a cluster that still has pending work placed on it", async () => {
    const ws = await workspace();
    const a = await cluster(ws, "ca");
    await cluster(ws, "cb");
    const id = await submit(ws, [
      { id: "a", project: { uri: "p" }, cluster: "ca" },
      { id: "c", project: { uri: "p" }, cluster: "cb", after: ["a"] },
    ]);
    expect((await call("DELETE", "/v1/clusters/cb", { token: ws.admin })).status).toBe(409);
    await report(a, `${id}-a`, "succeeded");
    expect((await state(ws.read, id)).nodes.c).toBe("dispatched");
  });
});
