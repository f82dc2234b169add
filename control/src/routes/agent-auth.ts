/** Agents authenticate with the credential their registration returned (stored hashed). */
import { eq } from "drizzle-orm";
import type { MiddlewareHandler } from "hono";
import { clusters } from "../../../db/schema";
import { sha256Hex } from "../crypto";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";

/** Authenticates an agent by its credential; the cluster it serves becomes `c.var.cluster`. */
export const authenticateAgent: MiddlewareHandler<AppEnv> = async (c, next) => {
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
