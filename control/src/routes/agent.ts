/**
 * /v1/agent/* — what agents call (ARCHITECTURE §5). Registration takes the cluster's single-use
 * bootstrap token; everything after it takes the agent credential it returned (stored hashed).
 */
import { and, eq, gt } from "drizzle-orm";
import type { Hono, MiddlewareHandler } from "hono";
import { clusters, natsRevocations } from "../../../db/schema";
import { AgentRegister, EventBatch, Heartbeat, type AgentRegistered } from "../../../proto/agent";
import { readBody } from "../body";
import { newSecret, sha256Hex } from "../crypto";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import { agentConsumerName, agentInboxPrefix, WORK_STREAM } from "../nats";
import { natsMinter, publisherFor } from "../publisher";
import { applyAgentEvents } from "../runs/events";

export const HEARTBEAT_SECONDS = 15;

/** Authenticates an agent by its credential; the cluster it serves becomes `c.var.cluster`. */
const authenticateAgent: MiddlewareHandler<AppEnv> = async (c, next) => {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header("authorization") ?? "");
  if (!match) throw new ApiError("unauthenticated", "missing agent credential: send `Authorization: Bearer <credential>`");
  const row = await c.var.db
    .select({ id: clusters.id, workspaceId: clusters.workspaceId, name: clusters.name })
    .from(clusters)
    .where(eq(clusters.agentCredentialHash, await sha256Hex(match[1]!)))
    .get();
  if (!row) throw new ApiError("unauthenticated", "unknown or revoked agent credential; register again with a new bootstrap token");
  c.set("cluster", row);
  await next();
};

export function registerAgentRoutes(app: Hono<AppEnv>) {
  app.post("/v1/agent/register", async (c) => {
    const body = await readBody(c, AgentRegister);
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
      throw new ApiError("unavailable", `NATS is not reachable right now; retry: ${(err as Error).message}`);
    });
    const jwt = await minter.mintAgentJwt({ clusterId: cluster.id, userPublicKey: body.natsPublicKey, now });
    const credential = newSecret("plc");
    // Spending the token is one conditional update: of two concurrent registrations, one wins.
    const [won] = await db
      .update(clusters)
      .set({ bootstrapTokenHash: null, bootstrapExpiresAt: null, agentCredentialHash: await sha256Hex(credential), natsUserPublicKey: body.natsPublicKey, registeredAt: now, lastHeartbeatAt: now, agentInfo: { agentVersion: body.agentVersion } })
      .where(and(eq(clusters.id, cluster.id), eq(clusters.bootstrapTokenHash, hash), gt(clusters.bootstrapExpiresAt, now)))
      .returning({ id: clusters.id });
    if (!won) throw new ApiError("unauthenticated", "unknown or already used bootstrap token");
    if (cluster.natsUserPublicKey && cluster.natsUserPublicKey !== body.natsPublicKey) {
      // A re-registration replaces the agent's key: the old one must stop working.
      await db.insert(natsRevocations).values({ publicKey: cluster.natsUserPublicKey, clusterId: cluster.id, revokedAt: now }).onConflictDoNothing();
      c.executionCtx.waitUntil(publisher.syncRevocations().catch(() => undefined));
    }
    const answer: AgentRegistered = {
      clusterId: cluster.id,
      clusterName: cluster.name,
      credential,
      nats: { servers: (c.env.NATS_URL ?? "").split(",").filter(Boolean), jwt, inboxPrefix: agentInboxPrefix(cluster.id), stream: WORK_STREAM, consumer: agentConsumerName(cluster.id) },
      heartbeatSeconds: HEARTBEAT_SECONDS,
    };
    return c.json(answer, 201);
  });

  app.post("/v1/agent/heartbeat", authenticateAgent, async (c) => {
    const body = await readBody(c, Heartbeat);
    await c.var.db.update(clusters).set({ lastHeartbeatAt: Date.now(), agentInfo: body }).where(eq(clusters.id, c.var.cluster!.id));
    return c.json({ ok: true, serverTime: new Date().toISOString(), heartbeatSeconds: HEARTBEAT_SECONDS });
  });

  app.post("/v1/agent/events", authenticateAgent, async (c) => {
    const body = await readBody(c, EventBatch);
    return c.json(await applyAgentEvents(c.var.db, c.var.cluster!.id, body.events));
  });
}
