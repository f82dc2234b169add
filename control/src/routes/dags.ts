/**
 * /v1/dags — DAG documents (JSON or YAML) with immutable versions. A PUT that changes nothing
 * returns the latest version instead of minting a new one, so re-applying a file is harmless.
 */
import { and, asc, desc, eq, gt, isNull } from "drizzle-orm";
import { dagVersions, dags, schedules } from "../../../db/schema";
import { DagGetQuery, DagPage, DagValidation, DagVersionPage, DagView, Deleted, PageQuery } from "../../../proto/api";
import { DagSchema, validateDag, type Dag } from "../../../proto/dag";
import { iso, newId } from "../crypto";
import { ApiError, conflictOnUnique, notFound } from "../errors";
import { route, type BodyDef } from "./define";
import { pageOf } from "./paging";

/** Parses and validates a DAG document; every problem is reported at once (422). */
export function acceptDag(doc: unknown): Dag {
  const result = validateDag(doc);
  if (!result.ok) {
    const n = result.problems.length;
    throw new ApiError("invalid_dag", `the DAG has ${n} problem${n === 1 ? "" : "s"}`, result.problems);
  }
  return result.dag;
}

type DagRow = typeof dags.$inferSelect;
const dagView = (row: DagRow, version: number, spec: string, createdAt: number) => ({
  name: row.name,
  version,
  latestVersion: row.latestVersion,
  createdAt: iso(row.createdAt)!,
  updatedAt: iso(row.updatedAt)!,
  versionCreatedAt: iso(createdAt)!,
  spec: JSON.parse(spec) as Dag,
});

/**
 * A DAG document, JSON or YAML. Schema problems and semantic ones (unknown nodes, cycles, undeclared
 * params) alike answer 422 with every problem, from the DAG's own validation.
 */
const dagBody = { schema: DagSchema, accept: acceptDag } satisfies BodyDef;
const live = (workspaceId: string, name: string) => and(eq(dags.workspaceId, workspaceId), eq(dags.name, name), isNull(dags.deletedAt));

export const dagRoutes = [
  route({
    method: "post",
    path: "/v1/dags:validate",
    summary: "Validate a DAG without storing it; 422 lists every problem",
    auth: "read",
    body: dagBody,
    ok: { 200: { description: "the DAG can be accepted; as it would be stored", schema: DagValidation } },
    errors: ["invalid_dag"],
  }).handle(async (_c, { body }) => ({ status: 200, body: { valid: true as const, dag: body } })),

  route({
    method: "post",
    path: "/v1/dags",
    summary: "Create a DAG (JSON or YAML)",
    auth: "write",
    body: dagBody,
    ok: { 201: { description: "version 1 of the new DAG", schema: DagView } },
    errors: ["invalid_dag", "conflict"],
  }).handle(async (c, { body: dag }) => {
    const db = c.var.db;
    const now = Date.now();
    const row: DagRow = { id: newId(now), workspaceId: c.var.principal.workspaceId, name: dag.name, latestVersion: 1, createdAt: now, updatedAt: now, deletedAt: null };
    const spec = JSON.stringify(dag);
    await db
      .batch([db.insert(dags).values(row), db.insert(dagVersions).values({ dagId: row.id, version: 1, spec, createdAt: now })])
      .catch(conflictOnUnique(`a DAG named "${dag.name}" already exists; PUT /v1/dags/${dag.name} adds a version`));
    return { status: 201, body: dagView(row, 1, spec, now) };
  }),

  route({
    method: "put",
    path: "/v1/dags/{name}",
    summary: "Add a version (or create); an unchanged document returns the latest version",
    auth: "write",
    body: dagBody,
    ok: {
      200: { description: "the new version, or the latest one when the document is unchanged", schema: DagView },
      201: { description: "the DAG did not exist: version 1 of the new DAG", schema: DagView },
    },
    // 422 also when the document's name is not the URL's.
    errors: ["invalid_dag", "conflict"],
  }).handle(async (c, { params: { name }, body: dag }) => {
    if (dag.name !== name) {
      throw new ApiError("invalid_dag", "the DAG's name does not match the URL", [{ path: "name", message: `the document names "${dag.name}" but the URL names "${name}"` }]);
    }
    const db = c.var.db;
    const spec = JSON.stringify(dag);
    const now = Date.now();
    const existing = await db.select().from(dags).where(live(c.var.principal.workspaceId, name)).get();
    if (!existing) {
      const row: DagRow = { id: newId(now), workspaceId: c.var.principal.workspaceId, name, latestVersion: 1, createdAt: now, updatedAt: now, deletedAt: null };
      await db
        .batch([db.insert(dags).values(row), db.insert(dagVersions).values({ dagId: row.id, version: 1, spec, createdAt: now })])
        .catch(conflictOnUnique(`DAG "${name}" was created concurrently; retry`));
      return { status: 201, body: dagView(row, 1, spec, now) };
    }
    const latest = await db
      .select()
      .from(dagVersions)
      .where(and(eq(dagVersions.dagId, existing.id), eq(dagVersions.version, existing.latestVersion)))
      .get();
    if (latest?.spec === spec) return { status: 200, body: dagView(existing, latest.version, latest.spec, latest.createdAt) };
    const version = existing.latestVersion + 1;
    // The version row's primary key makes a concurrent PUT of the same version fail as a whole.
    await db
      .batch([db.insert(dagVersions).values({ dagId: existing.id, version, spec, createdAt: now }), db.update(dags).set({ latestVersion: version, updatedAt: now }).where(eq(dags.id, existing.id))])
      .catch(conflictOnUnique(`DAG "${name}" was changed concurrently; retry`));
    return { status: 200, body: dagView({ ...existing, latestVersion: version, updatedAt: now }, version, spec, now) };
  }),

  route({ method: "get", path: "/v1/dags", summary: "List DAGs", auth: "read", query: PageQuery, ok: { 200: { description: "a page of DAGs, by name", schema: DagPage } } }).handle(
    async (c, { query: q }) => {
      const rows = await c.var.db
        .select({ row: dags, spec: dagVersions.spec })
        .from(dags)
        .innerJoin(dagVersions, and(eq(dagVersions.dagId, dags.id), eq(dagVersions.version, dags.latestVersion)))
        .where(and(eq(dags.workspaceId, c.var.principal.workspaceId), isNull(dags.deletedAt), q.cursor ? gt(dags.name, q.cursor) : undefined))
        .orderBy(asc(dags.name))
        .limit(q.limit + 1);
      const page = pageOf(
        rows,
        q.limit,
        ({ row }) => row.name,
        ({ row, spec }) => ({
          name: row.name,
          latestVersion: row.latestVersion,
          description: (JSON.parse(spec) as Dag).description ?? null,
          createdAt: iso(row.createdAt)!,
          updatedAt: iso(row.updatedAt)!,
        }),
      );
      return { status: 200, body: page };
    },
  ),

  route({
    method: "get",
    path: "/v1/dags/{name}",
    summary: "Get the latest or a given version",
    auth: "read",
    query: DagGetQuery,
    ok: { 200: { description: "that version of the DAG", schema: DagView } },
    errors: ["not_found"],
  }).handle(async (c, { params: { name }, query: q }) => {
    const row = await c.var.db.select().from(dags).where(live(c.var.principal.workspaceId, name)).get();
    if (!row) throw notFound(`DAG "${name}"`);
    const version = q.version ?? row.latestVersion;
    const v = await c.var.db
      .select()
      .from(dagVersions)
      .where(and(eq(dagVersions.dagId, row.id), eq(dagVersions.version, version)))
      .get();
    if (!v) throw notFound(`version ${version} of DAG "${name}" (latest is ${row.latestVersion})`);
    return { status: 200, body: dagView(row, v.version, v.spec, v.createdAt) };
  }),

  route({
    method: "get",
    path: "/v1/dags/{name}/versions",
    summary: "List a DAG's versions, newest first (one page)",
    auth: "read",
    ok: { 200: { description: "every version of the DAG", schema: DagVersionPage } },
    errors: ["not_found"],
  }).handle(async (c, { params: { name } }) => {
    const row = await c.var.db.select().from(dags).where(live(c.var.principal.workspaceId, name)).get();
    if (!row) throw notFound(`DAG "${name}"`);
    const versions = await c.var.db
      .select({ version: dagVersions.version, createdAt: dagVersions.createdAt })
      .from(dagVersions)
      .where(eq(dagVersions.dagId, row.id))
      .orderBy(desc(dagVersions.version));
    return { status: 200, body: { items: versions.map((v) => ({ version: v.version, createdAt: iso(v.createdAt)! })), nextCursor: null } };
  }),

  route({
    method: "delete",
    path: "/v1/dags/{name}",
    summary: "Delete (hide) a DAG; its runs stay",
    description: "Refused (409) while schedules use the DAG.",
    auth: "write",
    ok: { 200: { description: "the DAG is deleted", schema: Deleted } },
    errors: ["not_found", "conflict"],
  }).handle(async (c, { params: { name } }) => {
    const db = c.var.db;
    const row = await db.select().from(dags).where(live(c.var.principal.workspaceId, name)).get();
    if (!row) throw notFound(`DAG "${name}"`);
    const sched = await db
      .select({ name: schedules.name })
      .from(schedules)
      .where(and(eq(schedules.workspaceId, row.workspaceId), eq(schedules.dagName, name)))
      .limit(5);
    if (sched.length > 0) throw new ApiError("conflict", `DAG "${name}" is used by schedules ${sched.map((s) => `"${s.name}"`).join(", ")}; delete them first`);
    // Hidden, not erased: its runs stay visible and keep pointing at their version.
    await db.update(dags).set({ deletedAt: Date.now() }).where(eq(dags.id, row.id));
    return { status: 200, body: { deleted: true as const, name } };
  }),
];
