/**
 * The control plane under `wrangler dev` with a real nats-server in operator mode: agent
 * registration mints a per-cluster NATS credential, the Durable Object drains the outbox into
 * JetStream, and deleting a cluster revokes its agent.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { jwtAuthenticator } from "@nats-io/nats-core";
import { createUser } from "@nats-io/nkeys";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentRegistered } from "../../proto/agent";
import { WorkStartSchema } from "../../proto/messages";
import { startControlPlane, type ControlPlane } from "../../scripts/local/control-plane";
import { startTestNatsServer, type TestNatsServer } from "../support/nats-server";

// `$` and `#` reach the Worker unexpanded (its vars go through a dotenv file).
const TOKEN = "control-nats-test-token-$HOME-${PATH}#x";
let nats: TestNatsServer;
let cp: ControlPlane;
let state: string;

async function api(method: string, path: string, body?: unknown, token: string | null = TOKEN) {
  const res = await fetch(cp.url + path, {
    method,
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

beforeAll(async () => {
  nats = await startTestNatsServer();
  state = mkdtempSync(join(tmpdir(), "parallels-cp-"));
  cp = await startControlPlane({ stateDir: state, echo: !!process.env.ECHO_WRANGLER, vars: { PARALLELS_ADMIN_TOKEN: TOKEN, NATS_WS_URL: nats.wsUrl, NATS_URL: nats.url, ...nats.secrets } });
}, 120_000);

afterAll(async () => {
  await cp?.stop();
  await nats?.stop();
  if (state) rmSync(state, { recursive: true, force: true });
});

describe("control plane ↔ NATS", () => {
  it("registers an agent, publishes its work through the outbox, and revokes it when the cluster is deleted", async () => {
    const cluster = await api("POST", "/v1/clusters", { name: "edge", kind: "generic" });
    expect(cluster.status).toBe(201);
    const keys = createUser();
    const reg = await api("POST", "/v1/agent/register", { bootstrapToken: cluster.body.bootstrap.token, natsPublicKey: keys.getPublicKey(), agentVersion: "test" }, null);
    expect(reg.status).toBe(201);
    const registered = AgentRegistered.parse(reg.body);
    expect(registered.nats.servers).toEqual([nats.url]);
    // Single use: the same token again is refused.
    const again = await api("POST", "/v1/agent/register", { bootstrapToken: cluster.body.bootstrap.token, natsPublicKey: createUser().getPublicKey(), agentVersion: "test" }, null);
    expect(again.status).toBe(401);

    const nc = await connect({
      servers: registered.nats.servers,
      authenticator: jwtAuthenticator(registered.nats.jwt, keys.getSeed()),
      inboxPrefix: registered.nats.inboxPrefix,
      maxReconnectAttempts: 0,
    });
    const consumer = await jetstream(nc).consumers.get(registered.nats.stream, registered.nats.consumer);

    await api("PUT", "/v1/dags/pair", {
      name: "pair",
      nodes: [
        { id: "a", project: { uri: "p" } },
        { id: "b", project: { uri: "p" }, after: ["a"] },
      ],
    });
    const run = await api("POST", "/v1/runs", { dag: "pair" });
    expect(run.status).toBe(201);
    const msg = await consumer.next({ expires: 10_000 });
    expect(msg).not.toBeNull();
    const work = WorkStartSchema.parse(msg!.json());
    expect(work).toMatchObject({ runId: run.body.id, nodeId: "a", attempt: 1 });
    expect(msg!.headers?.get("Nats-Msg-Id")).toBe(`${run.body.id}-a.1.start`);
    msg!.ack();

    // Finish the run's work so the cluster can be deleted, then delete it: the agent is cut off.
    const ev = (seq: number, nodeRunId: string, type: string) => ({ nodeRunId, attempt: 1, seq, type, at: Date.now() });
    const cred = { authorization: `Bearer ${registered.credential}` };
    const post = (events: unknown[]) => fetch(`${cp.url}/v1/agent/events`, { method: "POST", headers: { ...cred, "content-type": "application/json" }, body: JSON.stringify({ events }) });
    expect((await post([ev(1, work.nodeRunId, "succeeded")])).status).toBe(200);
    const second = WorkStartSchema.parse((await consumer.next({ expires: 10_000 }))!.json());
    expect(second.nodeId).toBe("b");
    await post([ev(1, second.nodeRunId, "succeeded")]);
    expect((await api("GET", `/v1/runs/${run.body.id}`)).body.status).toBe("succeeded");

    const closed = nc.closed();
    expect((await api("DELETE", "/v1/clusters/edge")).status).toBe(200);
    const reason = await Promise.race([closed, new Promise((r) => setTimeout(() => r("still connected"), 10_000))]);
    expect(String(reason)).toMatch(/Authorization Violation|revoked/i);
    await expect(
      connect({ servers: registered.nats.servers, authenticator: jwtAuthenticator(registered.nats.jwt, keys.getSeed()), inboxPrefix: registered.nats.inboxPrefix, maxReconnectAttempts: 0 }),
    ).rejects.toThrow(/Authorization Violation/i);
    // Its agent credential is gone with it.
    expect((await post([ev(2, second.nodeRunId, "succeeded")])).status).toBe(401);
  }, 90_000);
});
