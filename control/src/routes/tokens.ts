/** Workspaces (root only) and API tokens (admins of a workspace). */
import { and, eq, isNull } from "drizzle-orm";
import { apiTokens, workspaces } from "../../../db/schema";
import { PageQuery, TokenCreate, TokenCreated, TokenPage, TokenView, WhoAmI, WorkspaceCreate, WorkspaceCreated, type Scope } from "../../../proto/api";
import { iso, newId, newSecret, sha256Hex } from "../crypto";
import { conflictOnUnique, notFound } from "../errors";
import { route } from "./define";
import { listPage } from "./paging";

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

export const tokenRoutes = [
  route({
    method: "get",
    path: "/v1/whoami",
    summary: "The caller's workspace and scope",
    auth: "read",
    ok: { 200: { description: "who the token is", schema: WhoAmI } },
  }).handle(async (c) => {
    const { workspaceId, scope, root } = c.var.principal;
    return { status: 200, body: { workspace: workspaceId, scope, root } };
  }),

  route({
    method: "post",
    path: "/v1/workspaces",
    summary: "Create a workspace and its first admin token",
    auth: "root",
    body: { schema: WorkspaceCreate },
    ok: { 201: { description: "the workspace and its admin token (its secret shown this once)", schema: WorkspaceCreated } },
    errors: ["conflict"],
  }).handle(async (c, { body }) => {
    const now = Date.now();
    const { token, row } = await mintToken(body.name, "admin", "admin", now);
    // One transaction: if the workspace exists, the primary key refuses it and no token is minted.
    await c.var.db
      .batch([c.var.db.insert(workspaces).values({ id: body.name, name: body.name, createdAt: now }), c.var.db.insert(apiTokens).values(row)])
      .catch(conflictOnUnique(`workspace "${body.name}" already exists`));
    return { status: 201, body: { workspace: { id: body.name, name: body.name, createdAt: iso(now)! }, adminToken: token, token: tokenView(row) } };
  }),

  route({
    method: "post",
    path: "/v1/tokens",
    summary: "Create an API token",
    auth: "admin",
    body: { schema: TokenCreate },
    ok: { 201: { description: "the token, with its secret `token` shown this once", schema: TokenCreated } },
  }).handle(async (c, { body }) => {
    const { token, row } = await mintToken(c.var.principal.workspaceId, body.name, body.scope, Date.now());
    await c.var.db.insert(apiTokens).values(row);
    return { status: 201, body: { token, ...tokenView(row) } };
  }),

  route({
    method: "get",
    path: "/v1/tokens",
    summary: "List tokens (never their secrets)",
    auth: "admin",
    query: PageQuery,
    ok: { 200: { description: "a page of tokens, by id", schema: TokenPage } },
  }).handle(async (c, { query }) => ({
    status: 200,
    body: await listPage(c.var.db, apiTokens, { workspace: apiTokens.workspaceId, key: apiTokens.id, keyOf: (r) => r.id }, c.var.principal.workspaceId, query, tokenView),
  })),

  route({
    method: "delete",
    path: "/v1/tokens/{id}",
    summary: "Revoke a token",
    auth: "admin",
    ok: { 200: { description: "the revoked token", schema: TokenView } },
    errors: ["not_found"],
  }).handle(async (c, { params }) => {
    const revoked = await c.var.db
      .update(apiTokens)
      .set({ revokedAt: Date.now() })
      .where(and(eq(apiTokens.id, params.id), eq(apiTokens.workspaceId, c.var.principal.workspaceId), isNull(apiTokens.revokedAt)))
      .returning();
    if (revoked.length === 0) throw notFound(`token "${params.id}"`);
    return { status: 200, body: tokenView(revoked[0]!) };
  }),
];
