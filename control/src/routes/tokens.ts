/** Workspaces (root only) and API tokens (admins of a workspace). */
import { and, eq, isNull } from "drizzle-orm";
import type { Hono } from "hono";
import { apiTokens, workspaces } from "../../../db/schema";
import { PageQuery, TokenCreate, WorkspaceCreate, type Scope } from "../../../proto/api";
import { requireRoot, requireScope } from "../auth";
import { readBody, readQuery } from "../body";
import { iso, newId, newSecret, sha256Hex } from "../crypto";
import { listPage } from "./paging";
import type { AppEnv } from "../env";
import { conflictOnUnique, notFound } from "../errors";

/** Builds the token row and the secret shown once to the caller. */
async function mintToken(workspaceId: string, name: string, scope: Scope, now: number) {
  const token = newSecret("pl");
  const row = { id: newId(now), workspaceId, name, scope, tokenHash: await sha256Hex(token), prefix: token.slice(0, 8), createdAt: now, revokedAt: null };
  return { token, row };
}

const tokenView = (r: typeof apiTokens.$inferSelect) => ({
  id: r.id,
  name: r.name,
  scope: r.scope,
  prefix: r.prefix,
  createdAt: iso(r.createdAt)!,
  revokedAt: iso(r.revokedAt),
});

export function registerTokens(app: Hono<AppEnv>) {
  app.post("/v1/workspaces", requireRoot, async (c) => {
    const body = await readBody(c, WorkspaceCreate);
    const now = Date.now();
    const { token, row } = await mintToken(body.name, "admin", "admin", now);
    // One transaction: if the workspace exists, the primary key refuses it and no token is minted.
    await c.var.db
      .batch([c.var.db.insert(workspaces).values({ id: body.name, name: body.name, createdAt: now }), c.var.db.insert(apiTokens).values(row)])
      .catch(conflictOnUnique(`workspace "${body.name}" already exists`));
    return c.json({ workspace: { id: body.name, name: body.name, createdAt: iso(now) }, adminToken: token, token: tokenView(row) }, 201);
  });

  app.post("/v1/tokens", requireScope("admin"), async (c) => {
    const body = await readBody(c, TokenCreate);
    const { token, row } = await mintToken(c.var.principal.workspaceId, body.name, body.scope, Date.now());
    await c.var.db.insert(apiTokens).values(row);
    return c.json({ token, ...tokenView(row) }, 201);
  });

  app.get("/v1/tokens", requireScope("admin"), async (c) => {
    const q = readQuery(c, PageQuery);
    return c.json(await listPage(c.var.db, apiTokens, { workspace: apiTokens.workspaceId, key: apiTokens.id, keyOf: (r) => r.id }, c.var.principal.workspaceId, q, tokenView));
  });

  app.delete("/v1/tokens/:id", requireScope("admin"), async (c) => {
    const revoked = await c.var.db
      .update(apiTokens)
      .set({ revokedAt: Date.now() })
      .where(and(eq(apiTokens.id, c.req.param("id")), eq(apiTokens.workspaceId, c.var.principal.workspaceId), isNull(apiTokens.revokedAt)))
      .returning();
    if (revoked.length === 0) throw notFound(`token "${c.req.param("id")}"`);
    return c.json(tokenView(revoked[0]!));
  });
}
