/**
 * Bearer-token authentication and scope checks. Tokens are stored as SHA-256 digests; the
 * PARALLELS_ADMIN_TOKEN secret is never stored at all. admin ⊃ write ⊃ read.
 */
import { and, eq, isNull } from "drizzle-orm";
import type { MiddlewareHandler } from "hono";
import { apiTokens, workspaces } from "../../db/schema";
import type { Scope } from "../../proto/api";
import { sameDigest, sha256Hex } from "./crypto";
import type { AppEnv, Principal } from "./env";
import { ApiError } from "./errors";

export const DEFAULT_WORKSPACE = "default";
const RANK: Record<Scope, number> = { read: 1, write: 2, admin: 3 };

let defaultWorkspaceReady = false;

export const authenticate: MiddlewareHandler<AppEnv> = async (c, next) => {
  const header = c.req.header("authorization");
  if (!header) throw new ApiError("unauthenticated", "missing bearer token: send `Authorization: Bearer <token>`");
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) throw new ApiError("unauthenticated", "malformed Authorization header: expected `Bearer <token>`");
  const digest = await sha256Hex(match[1]!);
  c.set("principal", await principalFor(c, digest));
  await next();
};

async function principalFor(c: Parameters<MiddlewareHandler<AppEnv>>[0], digest: string): Promise<Principal> {
  const secret = c.env.PARALLELS_ADMIN_TOKEN;
  if (secret && sameDigest(digest, await sha256Hex(secret))) {
    if (!defaultWorkspaceReady) {
      await c.var.db.insert(workspaces).values({ id: DEFAULT_WORKSPACE, name: DEFAULT_WORKSPACE, createdAt: Date.now() }).onConflictDoNothing();
      defaultWorkspaceReady = true;
    }
    return { workspaceId: DEFAULT_WORKSPACE, scope: "admin", root: true, tokenId: null };
  }
  const row = await c.var.db
    .select({ id: apiTokens.id, workspaceId: apiTokens.workspaceId, scope: apiTokens.scope })
    .from(apiTokens)
    .where(and(eq(apiTokens.tokenHash, digest), isNull(apiTokens.revokedAt)))
    .get();
  if (!row) throw new ApiError("unauthenticated", "unknown or revoked token");
  return { workspaceId: row.workspaceId, scope: row.scope, root: false, tokenId: row.id };
}

/** Refuses the request unless the caller's token has at least `needed`. */
export const requireScope =
  (needed: Scope): MiddlewareHandler<AppEnv> =>
  async (c, next) => {
    const { scope } = c.var.principal;
    if (RANK[scope] < RANK[needed]) {
      throw new ApiError("forbidden", `this action needs a token with the \`${needed}\` scope; yours has \`${scope}\``);
    }
    await next();
  };

export const requireRoot: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (!c.var.principal.root) throw new ApiError("forbidden", "only the PARALLELS_ADMIN_TOKEN secret may create workspaces");
  await next();
};
