/**
 * /v1/agent/* — what agents call (ARCHITECTURE §5). Registration takes the cluster's single-use
 * bootstrap token; everything after it takes the agent credential it returned (agent-auth.ts).
 */
import { and, eq, gt, sql } from "drizzle-orm";
import { clusters } from "../../../db/schema";
import { AgentRegister, AgentRegistered, CacheLookup, CacheLookupAnswer, EventBatch, EventBatchResult, Heartbeat, HeartbeatAnswer } from "../../../proto/agent";
import { writeBatch } from "../db";
import { newSecret, sha256Hex } from "../crypto";
import type { Env } from "../env";
import { ApiError, conflictOnUnique } from "../errors";
import { agentConsumerName, agentInboxPrefix, WORK_STREAM } from "../../../proto/nats";
import { isPublicKey } from "../nats";
import { natsMinter, publisherFor } from "../publisher";
import { lookupCache } from "../runs/cache";
import { applyAgentEvents } from "../runs/events";
import { route } from "./define";

export const HEARTBEAT_SECONDS = 15;

/** The NATS URLs agents connect to (`NATS_URL`, comma-separated). */
const natsServersOf = (env: Env): string[] => (env.NATS_URL ?? "").split(",").filter(Boolean);

export const agentRoutes = [
  route({
    method: "post",
    path: "/v1/agent/register",
    summary: "Register a cluster's agent (single-use bootstrap token)",
    auth: "bootstrap",
    body: { schema: AgentRegister },
    ok: { 201: { description: "the agent's credential and its NATS connection", schema: AgentRegistered } },
    errors: ["unauthenticated", "conflict", "unavailable"],
  }).handle(async (c, { body }) => {
    // The schema checks the shape; the key's own checksum is checked here, before any side effect.
    if (!isPublicKey(body.natsPublicKey, "user")) {
      throw new ApiError("invalid_request", "invalid request body", [{ path: "natsPublicKey", message: "not a valid NATS user public key (bad checksum)" }]);
    }
    const db = c.var.db;
    const now = Date.now();
    const hash = await sha256Hex(body.bootstrapToken);
    const cluster = await db.select().from(clusters).where(eq(clusters.bootstrapTokenHash, hash)).get();
    if (!cluster) throw new ApiError("unauthenticated", "unknown or already used bootstrap token");
    if ((cluster.bootstrapExpiresAt ?? 0) <= now) {
      throw new ApiError("unauthenticated", `the bootstrap token expired; get a new one with POST /v1/clusters/${cluster.name}/bootstrap`);
    }
    const publisher = publisherFor(c.env);
    const minter = await natsMinter(c.env);
    if (!publisher || !minter) throw new ApiError("unavailable", "this control plane has no NATS configured (see docs/architecture.md)");
    // The consumer exists before the token is spent: if NATS is down, the agent can retry.
    await publisher.ensureConsumer(cluster.id).catch((err) => {
      // The cause is for operators' logs; an unauthenticated caller only learns to retry.
      console.error(JSON.stringify({ msg: "ensureConsumer failed", clusterId: cluster.id, error: String(err) }));
      throw new ApiError("unavailable", "NATS is not reachable right now; retry later");
    });
    const jwt = await minter.mintAgentJwt({ clusterId: cluster.id, userPublicKey: body.natsPublicKey, now });
    const credential = newSecret("plc");
    const credentialHash = await sha256Hex(credential);
    const replaced = cluster.natsUserPublicKey && cluster.natsUserPublicKey !== body.natsPublicKey ? cluster.natsUserPublicKey : null;
    // Spending the token is one conditional update: of two concurrent registrations, one wins.
    // A re-registration replaces the agent's key, and the old one is revoked in the same batch.
    const results = await writeBatch(db, [
      db
        .update(clusters)
        .set({
          bootstrapTokenHash: null,
          bootstrapExpiresAt: null,
          agentCredentialHash: credentialHash,
          natsUserPublicKey: body.natsPublicKey,
          registeredAt: now,
          lastHeartbeatAt: now,
          agentInfo: { agentVersion: body.agentVersion },
        })
        .where(and(eq(clusters.id, cluster.id), eq(clusters.bootstrapTokenHash, hash), gt(clusters.bootstrapExpiresAt, now))),
      ...(replaced
        ? [
            db.run(sql`INSERT INTO nats_revocations (public_key, cluster_id, revoked_at) SELECT ${replaced}, ${cluster.id}, ${now}
            WHERE (SELECT agent_credential_hash FROM clusters WHERE id = ${cluster.id}) = ${credentialHash} ON CONFLICT DO NOTHING`),
          ]
        : []),
    ]).catch(conflictOnUnique("this NATS key is already registered for another cluster; make a new key pair", [{ path: "natsPublicKey", message: "already in use" }]));
    if ((results[0]?.meta?.changes ?? 0) !== 1) throw new ApiError("unauthenticated", "unknown or already used bootstrap token");
    if (replaced) c.executionCtx.waitUntil(publisher.syncRevocations().catch(() => undefined));
    const answer = {
      clusterId: cluster.id,
      clusterName: cluster.name,
      credential,
      nats: { servers: natsServersOf(c.env), jwt, inboxPrefix: agentInboxPrefix(cluster.id), stream: WORK_STREAM, consumer: agentConsumerName(cluster.id) },
      heartbeatSeconds: HEARTBEAT_SECONDS,
    };
    return { status: 201, body: answer };
  }),

  route({
    method: "post",
    path: "/v1/agent/heartbeat",
    summary: "Agent heartbeat (every ~15 s; offline after 3 missed)",
    auth: "agent",
    body: { schema: Heartbeat },
    ok: { 200: { description: "the server's time and where NATS is now", schema: HeartbeatAnswer } },
  }).handle(async (c, { body }) => {
    await c.var.db.update(clusters).set({ lastHeartbeatAt: Date.now(), agentInfo: body }).where(eq(clusters.id, c.var.cluster!.id));
    return { status: 200, body: { ok: true, serverTime: new Date().toISOString(), heartbeatSeconds: HEARTBEAT_SECONDS, natsServers: natsServersOf(c.env) } };
  }),

  route({
    method: "post",
    path: "/v1/agent/events",
    summary: "Batched events of the agent's node runs, applied idempotently",
    auth: "agent",
    body: { schema: EventBatch },
    ok: { 200: { description: "what was applied", schema: EventBatchResult } },
    // A batch that reports on work this cluster was not given.
    errors: ["forbidden"],
  }).handle(async (c, { body }) => ({ status: 200, body: await applyAgentEvents(c.var.db, c.var.cluster!.id, body.events) })),

  route({
    method: "post",
    path: "/v1/agent/cache",
    summary: "A caching node's attempt asks for a succeeded node run with its cache key (the key is kept on the node run)",
    auth: "agent",
    body: { schema: CacheLookup },
    ok: { 200: { description: "the node run whose result stands for this one, or null: run the step", schema: CacheLookupAnswer } },
    errors: ["forbidden"],
  }).handle(async (c, { body }) => ({ status: 200, body: await lookupCache(c.var.db, c.var.cluster!.id, body) })),
];
