/**
 * /v1/clusters — the Kubernetes clusters (or the local machine) whose agents run the work.
 * Creating one answers once with a short-lived, single-use bootstrap token for its agent.
 */
import { and, eq, sql } from "drizzle-orm";
import { clusters } from "../../../db/schema";
import { ClusterCreate, ClusterCreated, ClusterDeleted, ClusterPage, ClusterView, PageQuery } from "../../../proto/api";
import { TERMINAL_NODE_STATUSES, TERMINAL_RUN_STATUSES } from "../../../proto/status";
import { iso, newId, newSecret, sha256Hex } from "../crypto";
import { sqlList, writeBatch, type Db } from "../db";
import { publisherFor } from "../publisher";
import { route } from "./define";
import { listPage } from "./paging";
import type { Env } from "../env";
import { ApiError, conflictOnUnique, notFound } from "../errors";

/** An agent beats every 15 s; three missed beats and the cluster is offline. */
export const OFFLINE_AFTER_MS = 3 * 15_000;

type ClusterRow = typeof clusters.$inferSelect;

export function clusterView(row: ClusterRow, now = Date.now()): ClusterView {
  const status = row.registeredAt == null ? "awaiting_agent" : row.lastHeartbeatAt != null && now - row.lastHeartbeatAt <= OFFLINE_AFTER_MS ? "online" : "offline";
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    labels: row.labels,
    status,
    registeredAt: iso(row.registeredAt),
    lastHeartbeatAt: iso(row.lastHeartbeatAt),
    agent: (row.agentInfo as ClusterView["agent"]) ?? null,
    createdAt: iso(row.createdAt)!,
  };
}

async function newBootstrap(env: Env, now: number) {
  const token = newSecret("plb");
  const ttl = Number(env.BOOTSTRAP_TTL_SECONDS ?? 3600);
  return { token, hash: await sha256Hex(token), expiresAt: now + ttl * 1000 };
}

/** A word the shell takes as it is: single quotes, and any single quote inside written as '\''. */
const shellWord = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/**
 * The line that installs this cluster's agent (charts/parallels-agent), for sh or bash in the
 * repository's root. The bootstrap token reaches no command line: the shell's builtin `printf`
 * writes it to a 0600 file from `mktemp`, helm reads it with `--set-file`, and the file is removed
 * when the subshell ends (also on failure or Ctrl-C). The MLflow tracking server is the user's
 * `MLFLOW_TRACKING_URI`: the control plane does not know it.
 */
export function helmInstall(env: Env, cluster: Pick<ClusterRow, "name">, token: string): string {
  const url = env.PUBLIC_URL ?? "http://127.0.0.1:8787";
  return (
    `(: "\${MLFLOW_TRACKING_URI:?set MLFLOW_TRACKING_URI to the MLflow tracking server the steps log to}"; ` +
    `f=$(mktemp) || exit; trap 'rm -f "$f"' EXIT; trap 'exit 1' HUP INT TERM; ` +
    `printf '%s' ${shellWord(token)} >"$f" && ` +
    `helm upgrade --install parallels-agent charts/parallels-agent --namespace parallels --create-namespace ` +
    `--set-string controlPlane.url=${shellWord(url)} --set-string cluster.name=${shellWord(cluster.name)} ` +
    `--set-string mlflow.trackingUri="$MLFLOW_TRACKING_URI" --set-file bootstrap.token="$f")`
  );
}

function bootstrapAnswer(env: Env, row: ClusterRow, b: { token: string; expiresAt: number }) {
  return { cluster: clusterView(row), bootstrap: { token: b.token, expiresAt: iso(b.expiresAt)!, helmInstall: helmInstall(env, row, b.token) } };
}

const byName = (workspaceId: string, name: string) => and(eq(clusters.workspaceId, workspaceId), eq(clusters.name, name));

export const clusterRoutes = [
  route({
    method: "post",
    path: "/v1/clusters",
    summary: "Create a cluster; answers once with its bootstrap token and helm install line",
    auth: "admin",
    body: { schema: ClusterCreate },
    ok: { 201: { description: "the cluster, and its agent's single-use bootstrap token", schema: ClusterCreated } },
    errors: ["conflict"],
  }).handle(async (c, { body }) => {
    const now = Date.now();
    const boot = await newBootstrap(c.env, now);
    const row: ClusterRow = {
      id: newId(now),
      workspaceId: c.var.principal.workspaceId,
      name: body.name,
      kind: body.kind,
      labels: body.labels,
      bootstrapTokenHash: boot.hash,
      bootstrapExpiresAt: boot.expiresAt,
      agentCredentialHash: null,
      natsUserPublicKey: null,
      registeredAt: null,
      lastHeartbeatAt: null,
      agentInfo: null,
      createdAt: now,
    };
    await c.var.db
      .insert(clusters)
      .values(row)
      .catch(conflictOnUnique(`a cluster named "${body.name}" already exists`, [{ path: "name", message: "already taken" }]));
    return { status: 201, body: bootstrapAnswer(c.env, row, boot) };
  }),

  route({ method: "get", path: "/v1/clusters", summary: "List clusters", auth: "read", query: PageQuery, ok: { 200: { description: "a page of clusters, by name", schema: ClusterPage } } }).handle(
    async (c, { query }) => {
      const now = Date.now();
      return {
        status: 200,
        body: await listPage(c.var.db, clusters, { workspace: clusters.workspaceId, key: clusters.name, keyOf: (r) => r.name }, c.var.principal.workspaceId, query, (r) => clusterView(r, now)),
      };
    },
  ),

  route({ method: "get", path: "/v1/clusters/{name}", summary: "Get a cluster", auth: "read", ok: { 200: { description: "the cluster", schema: ClusterView } }, errors: ["not_found"] }).handle(
    async (c, { params }) => {
      const row = await c.var.db.select().from(clusters).where(byName(c.var.principal.workspaceId, params.name)).get();
      if (!row) throw notFound(`cluster "${params.name}"`);
      return { status: 200, body: clusterView(row) };
    },
  ),

  /** A new bootstrap token (the old one stops working), e.g. when an install was not finished in time. */
  route({
    method: "post",
    path: "/v1/clusters/{name}/bootstrap",
    summary: "Issue a new bootstrap token (the previous one stops working)",
    auth: "admin",
    ok: { 200: { description: "the cluster and its new bootstrap token", schema: ClusterCreated } },
    errors: ["not_found"],
  }).handle(async (c, { params }) => {
    const now = Date.now();
    const boot = await newBootstrap(c.env, now);
    const [row] = await c.var.db.update(clusters).set({ bootstrapTokenHash: boot.hash, bootstrapExpiresAt: boot.expiresAt }).where(byName(c.var.principal.workspaceId, params.name)).returning();
    if (!row) throw notFound(`cluster "${params.name}"`);
    return { status: 200, body: bootstrapAnswer(c.env, row, boot) };
  }),

  route({
    method: "delete",
    path: "/v1/clusters/{name}",
    summary: "Delete a cluster and revoke its credentials",
    description: "Refused (409) while work placed on the cluster is not over.",
    auth: "admin",
    ok: { 200: { description: "the deleted cluster", schema: ClusterDeleted } },
    errors: ["not_found", "conflict"],
  }).handle(async (c, { params }) => {
    const db = c.var.db;
    const row = await db.select().from(clusters).where(byName(c.var.principal.workspaceId, params.name)).get();
    if (!row) throw notFound(`cluster "${params.name}"`);
    const now = await deleteIdle(db, row);
    if (row.natsUserPublicKey)
      c.executionCtx.waitUntil(
        publisherFor(c.env)
          ?.syncRevocations()
          .catch(() => undefined) ?? Promise.resolve(),
      );
    return { status: 200, body: { deleted: true as const, cluster: clusterView(row, now) } };
  }),
];

/**
 * Deletes the cluster unless work placed on it is not over yet (pending nodes included: they would
 * be dispatched to a cluster that no longer exists), checked inside the deleting batch, so a submit
 * cannot slip in between the check and the delete. Deleting revokes: the agent credential goes with
 * the row, and its NATS key joins the revocation list that every account-JWT push carries.
 */
async function deleteIdle(db: Db, row: ClusterRow): Promise<number> {
  const idle = sql`NOT EXISTS (SELECT 1 FROM node_runs n JOIN dag_runs r ON r.id = n.run_id
    WHERE n.cluster_id = ${row.id} AND n.status NOT IN ${sqlList(TERMINAL_NODE_STATUSES)}
      AND r.status NOT IN ${sqlList(TERMINAL_RUN_STATUSES)})`;
  const now = Date.now();
  const results = await writeBatch(db, [
    ...(row.natsUserPublicKey
      ? [db.run(sql`INSERT INTO nats_revocations (public_key, cluster_id, revoked_at) SELECT ${row.natsUserPublicKey}, ${row.id}, ${now} WHERE ${idle} ON CONFLICT DO NOTHING`)]
      : []),
    db.run(sql`DELETE FROM clusters WHERE id = ${row.id} AND ${idle}`),
  ]);
  if ((results.at(-1)?.meta?.changes ?? 0) === 0) throw new ApiError("conflict", `cluster "${row.name}" has unfinished work placed on it; cancel those runs first`);
  return now;
}
