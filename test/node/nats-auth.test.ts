// Per-cluster NATS credentials against a real nats-server in operator mode (nats-auth.md).
import { headers, jwtAuthenticator, type NatsConnection, type Status, wsconnect } from "@nats-io/nats-core";
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import * as nkeys from "@nats-io/nkeys";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { claimsLookupSubject, claimsUpdateRequest, createNatsMinter, decodeJwt, type NatsMinter, parseClaimsUpdateResponse, revocationList } from "../../control/src/nats";
import { agentConsumerConfig, agentConsumerName, agentInboxPrefix, WORK_STREAM, workMsgId, workStreamConfig, workSubject } from "../../proto/nats";
import { startTestNatsServer, type TestNatsServer } from "../support/nats-server";

const te = new TextEncoder();
const td = new TextDecoder();

interface Agent {
  clusterId: string;
  publicKey: string;
  seed: string;
  jwt: string;
}

/** Watches a connection's status events. */
function watch(nc: NatsConnection) {
  const events: Status[] = [];
  void (async () => {
    for await (const s of nc.status()) events.push(s);
  })();
  const waitFor = async (pred: (s: Status) => boolean, ms = 5000): Promise<Status> => {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      const hit = events.find(pred);
      if (hit) return hit;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`no matching status in ${ms} ms; saw ${JSON.stringify(events.map((e) => [e.type, "error" in e ? e.error.message : ""]))}`);
  };
  return { events, waitFor };
}

const errorMessage = (s: Status) => (s.type === "error" ? s.error.message : "");

describe("NATS per-cluster credentials (real nats-server, operator mode)", () => {
  let server: TestNatsServer;
  let control: NatsConnection;
  let jsm: JetStreamManager;
  let minter: NatsMinter;
  let agentA: Agent;
  let agentB: Agent;
  const open: NatsConnection[] = [];

  /** The agent side: its own nkey, only the public key is sent to the control plane. */
  async function register(clusterId: string): Promise<Agent> {
    const kp = nkeys.createUser();
    const publicKey = kp.getPublicKey();
    const jwt = await minter.mintAgentJwt({ clusterId, userPublicKey: publicKey }); // control plane
    return { clusterId, publicKey, seed: td.decode(kp.getSeed()), jwt };
  }

  async function connectAgent(a: Agent, opts: Record<string, unknown> = {}): Promise<NatsConnection> {
    const nc = await connect({
      servers: server.url,
      name: `agent-${a.clusterId}`,
      inboxPrefix: agentInboxPrefix(a.clusterId),
      authenticator: jwtAuthenticator(a.jwt, te.encode(a.seed)),
      ...opts,
    });
    open.push(nc);
    return nc;
  }

  async function publishWork(clusterId: string, nodeRunId: string, kind: "start" | "cancel" = "start") {
    const h = headers();
    h.set("Nats-Msg-Id", workMsgId(nodeRunId, 1, kind));
    return jetstream(control).publish(workSubject(clusterId, kind), JSON.stringify({ nodeRunId, attempt: 1 }), { headers: h });
  }

  /** Pulls one message as the agent and acks it; returns its payload. */
  async function pullOne(nc: NatsConnection, clusterId: string): Promise<{ subject: string; body: unknown } | null> {
    const consumer = await jetstream(nc).consumers.get(WORK_STREAM, agentConsumerName(clusterId));
    const m = await consumer.next({ expires: 2000 });
    if (!m) return null;
    expect(await m.ackAck()).toBe(true);
    return { subject: m.subject, body: m.json() };
  }

  beforeAll(async () => {
    server = await startTestNatsServer();
    minter = await createNatsMinter({
      accountSigningSeed: server.secrets.NATS_ACCOUNT_SIGNING_SEED,
      appAccount: server.secrets.NATS_APP_ACCOUNT,
      operatorSigningSeed: server.secrets.NATS_OPERATOR_SIGNING_SEED,
    });
    control = await connect({
      servers: server.url,
      name: "control-plane",
      authenticator: jwtAuthenticator(server.secrets.NATS_CONTROL_USER_JWT, te.encode(server.secrets.NATS_CONTROL_USER_SEED)),
    });
    jsm = await jetstreamManager(control);
    agentA = await register("A");
    agentB = await register("B");
  });

  afterAll(async () => {
    await Promise.allSettled([control, ...open].map((nc) => nc?.close()));
    await server?.stop();
  });

  it("the control user creates stream WORK and the per-cluster consumers (ARCHITECTURE §4)", async () => {
    const stream = await jsm.streams.add(workStreamConfig());
    expect(stream.config).toMatchObject({
      name: "WORK",
      subjects: ["work.>"],
      storage: "file",
      retention: "workqueue",
      duplicate_window: 600_000_000_000,
    });
    for (const id of ["A", "B"]) {
      const info = await jsm.consumers.add(WORK_STREAM, agentConsumerConfig(id));
      expect(info.config).toMatchObject({
        durable_name: `agent-${id}`,
        filter_subject: `work.${id}.>`,
        ack_policy: "explicit",
        max_deliver: 5,
        ack_wait: 30_000_000_000,
        backoff: [30, 60, 120, 300].map((s) => s * 1e9),
      });
    }
    // Idempotent: the control plane re-creates them at every registration/startup.
    await jsm.streams.add(workStreamConfig());
    await jsm.consumers.add(WORK_STREAM, agentConsumerConfig("A"));
    expect((await jsm.consumers.info(WORK_STREAM, "agent-A")).config.filter_subject).toBe("work.A.>");
  });

  it("de-duplicates by Nats-Msg-Id", async () => {
    const first = await publishWork("A", "dup-1");
    const again = await publishWork("A", "dup-1");
    expect(first.duplicate).toBe(false);
    expect(again.duplicate).toBe(true);
    expect(again.seq).toBe(first.seq);
    expect((await jsm.consumers.info(WORK_STREAM, "agent-A")).num_pending).toBe(1);
  });

  it("the control user also connects over the WebSocket listener (as the Durable Object will)", async () => {
    const ws = await wsconnect({
      servers: server.wsUrl,
      authenticator: jwtAuthenticator(server.secrets.NATS_CONTROL_USER_JWT, te.encode(server.secrets.NATS_CONTROL_USER_SEED)),
    });
    open.push(ws);
    const h = headers();
    h.set("Nats-Msg-Id", workMsgId("dup-1", 1, "start")); // same id as above: still a duplicate
    const ack = await jetstream(ws).publish(workSubject("A", "start"), "{}", { headers: h });
    expect(ack.duplicate).toBe(true);
    await ws.close();
  });

  it("an agent pulls and acks its own work with a JWT minted by the WebCrypto module", async () => {
    expect(decodeJwt(agentA.jwt)).toMatchObject({ sub: agentA.publicKey, iss: minter.accountSigningKey });
    const nc = await connectAgent(agentA);
    const w = watch(nc);
    const got = await pullOne(nc, "A");
    expect(got).toEqual({ subject: "work.A.start", body: { nodeRunId: "dup-1", attempt: 1 } });
    // Work-queue retention: acked means gone.
    const info = await jsm.consumers.info(WORK_STREAM, "agent-A");
    expect(info.num_pending + info.num_ack_pending).toBe(0);
    expect((await jsm.streams.info(WORK_STREAM)).state.messages).toBe(0);
    expect(w.events.filter((e) => e.type === "error")).toEqual([]);
    await nc.close();
  });

  it("the credentials of A cannot read B's work, subscribe work.> or publish work for B", async () => {
    await publishWork("B", "b-1");
    const nc = await connectAgent(agentA);
    const w = watch(nc);

    // Looking up B's consumer: the server answers a publish permission violation.
    await expect(jetstream(nc).consumers.get(WORK_STREAM, "agent-B")).rejects.toThrow('Permissions Violation for Publish to "$JS.API.CONSUMER.INFO.WORK.agent-B"');
    const infoDenied = await w.waitFor((s) => errorMessage(s).includes("agent-B"));
    expect(errorMessage(infoDenied)).toBe('Permissions Violation for Publish to "$JS.API.CONSUMER.INFO.WORK.agent-B"');

    // Pulling from B's consumer directly.
    nc.publish(`$JS.API.CONSUMER.MSG.NEXT.WORK.agent-B`, JSON.stringify({ batch: 1, expires: 1e9 }), { reply: `${agentInboxPrefix("A")}.x` });
    const nextDenied = await w.waitFor((s) => errorMessage(s).includes("MSG.NEXT"));
    expect(errorMessage(nextDenied)).toBe('Permissions Violation for Publish to "$JS.API.CONSUMER.MSG.NEXT.WORK.agent-B"');

    // Subscribing to all work.
    const sub = nc.subscribe("work.>");
    const subDenied = await w.waitFor((s) => errorMessage(s).includes("Subscription"));
    expect(errorMessage(subDenied)).toBe('Permissions Violation for Subscription to "work.>"');
    expect(await sub.closed).toBeInstanceOf(Error);

    // Publishing work for B: publish() does not throw, the violation arrives as a status.
    nc.publish("work.B.start", "forged");
    const pubDenied = await w.waitFor((s) => errorMessage(s).includes("work.B.start"));
    expect(errorMessage(pubDenied)).toBe('Permissions Violation for Publish to "work.B.start"');

    // Using another inbox than its own.
    nc.subscribe("_INBOX.>");
    const inboxDenied = await w.waitFor((s) => errorMessage(s).includes('"_INBOX.>"'));
    expect(errorMessage(inboxDenied)).toBe('Permissions Violation for Subscription to "_INBOX.>"');

    // A violation does not close the connection; B's work is untouched; A still reads its own.
    expect(nc.isClosed()).toBe(false);
    const b = await jsm.consumers.info(WORK_STREAM, "agent-B");
    expect(b.num_pending).toBe(1);
    expect(b.delivered.stream_seq).toBe(0);
    await publishWork("A", "a-2");
    expect(await pullOne(nc, "A")).toMatchObject({ subject: "work.A.start" });
    await nc.close();

    // B reads its own (the message A could not touch).
    const ncB = await connectAgent(agentB);
    expect(await pullOne(ncB, "B")).toEqual({ subject: "work.B.start", body: { nodeRunId: "b-1", attempt: 1 } });
    await ncB.close();
  });

  it("revoking A drops it at once and refuses it on reconnect; B keeps working", async () => {
    const ncA = await connectAgent(agentA, { reconnectTimeWait: 100, maxReconnectAttempts: 20 });
    const ncB = await connectAgent(agentB);
    const wA = watch(ncA);
    const wB = watch(ncB);
    const sys = await connect({
      servers: server.url,
      name: "control-plane-sys",
      authenticator: jwtAuthenticator(server.secrets.NATS_SYS_USER_JWT, te.encode(server.secrets.NATS_SYS_USER_SEED)),
    });
    open.push(sys);

    // The control plane keeps revocations in D1 and pushes the full list every time.
    const rows = [{ publicKey: agentA.publicKey, revokedAt: Date.now() }];
    const accountJwt = await minter.mintAccountJwt({
      revocations: revocationList(rows),
      after: decodeJwt(server.setup.keys.appAccount.jwt).iat,
    });
    const { subject, payload } = claimsUpdateRequest(accountJwt);
    const reply = parseClaimsUpdateResponse((await sys.request(subject, payload, { timeout: 5000 })).data);
    expect(reply).toMatchObject({ ok: true, code: 200, account: server.secrets.NATS_APP_ACCOUNT });

    const revoked = await wA.waitFor((s) => errorMessage(s).includes("Revoked"));
    expect(errorMessage(revoked)).toBe("User Authentication Revoked");
    await wA.waitFor((s) => s.type === "disconnect");
    const closedWith = await Promise.race([ncA.closed(), new Promise((r) => setTimeout(() => r("still open"), 5000))]);
    expect(String(closedWith)).toMatch(/Authorization Violation/);

    await expect(connectAgent(agentA)).rejects.toThrow(/Authorization Violation/);

    await publishWork("B", "b-2");
    expect(await pullOne(ncB, "B")).toMatchObject({ body: { nodeRunId: "b-2" } });
    expect(wB.events.filter((e) => e.type === "disconnect" || e.type === "error")).toEqual([]);
    await ncB.close();
    await sys.close();
  });

  it("the revocation survives a server restart (full resolver); B and queued work too", async () => {
    await publishWork("B", "b-3");
    await control.close();
    await server.restart();
    control = await connect({
      servers: server.url,
      authenticator: jwtAuthenticator(server.secrets.NATS_CONTROL_USER_JWT, te.encode(server.secrets.NATS_CONTROL_USER_SEED)),
    });
    jsm = await jetstreamManager(control);

    await expect(connectAgent(agentA)).rejects.toThrow(/Authorization Violation/);
    const ncB = await connectAgent(agentB);
    expect(await pullOne(ncB, "B")).toMatchObject({ body: { nodeRunId: "b-3" } }); // file storage kept it
    await ncB.close();

    // A new key for cluster A (re-registration) is not affected by the old key's revocation.
    const fresh = await register("A");
    const ncA2 = await connectAgent(fresh);
    await publishWork("A", "a-3");
    expect(await pullOne(ncA2, "A")).toMatchObject({ body: { nodeRunId: "a-3" } });
    await ncA2.close();
  });

  it("an older account JWT pushed later un-revokes (nats-server accepts it); lookup + re-push restores", async () => {
    const sys = await connect({
      servers: server.url,
      authenticator: jwtAuthenticator(server.secrets.NATS_SYS_USER_JWT, te.encode(server.secrets.NATS_SYS_USER_SEED)),
    });
    open.push(sys);
    const app = server.secrets.NATS_APP_ACCOUNT;
    const lookup = async () => td.decode((await sys.request(claimsLookupSubject(app), undefined, { timeout: 5000 })).data);
    const held = decodeJwt<{ revocations?: Record<string, number> }>(await lookup());
    expect(Object.keys(held.nats.revocations ?? {})).toEqual([agentA.publicKey]);

    // setup's JWT (no revocations, older iat) is still accepted and stored: A gets back in.
    const stale = claimsUpdateRequest(server.setup.keys.appAccount.jwt);
    const reply = parseClaimsUpdateResponse((await sys.request(stale.subject, stale.payload, { timeout: 5000 })).data);
    expect(reply).toMatchObject({ ok: true, message: "jwt updated" });
    const ncA = await connectAgent(agentA);
    await ncA.close();

    // Reconciliation: the held JWT lacks the list kept in D1, so re-push the full list, newer.
    const nowHeld = decodeJwt<{ revocations?: Record<string, number> }>(await lookup());
    expect(nowHeld.nats.revocations).toBeUndefined();
    const fixed = await minter.mintAccountJwt({ revocations: held.nats.revocations!, after: Math.max(nowHeld.iat, held.iat) });
    const push = claimsUpdateRequest(fixed);
    expect(parseClaimsUpdateResponse((await sys.request(push.subject, push.payload, { timeout: 5000 })).data).ok).toBe(true);
    await expect(connectAgent(agentA)).rejects.toThrow(/Authorization Violation/);
    await sys.close();
  });
});
