/**
 * /v1/dags — DAG documents (JSON or YAML) with immutable versions. A PUT that changes nothing
 * returns the latest version instead of minting a new one, so re-applying a file is harmless.
 */
import { and, asc, desc, eq, gt, isNull } from "drizzle-orm";
import type { Hono } from "hono";
import { dagVersions, dags, schedules } from "../../../db/schema";
import { PageQuery } from "../../../proto/api";
import { validateDag, type Dag } from "../../../proto/dag";
import { requireScope } from "../auth";
import { readDocument, validate } from "../body";
import { iso, newId } from "../crypto";
import { pageOf } from "./paging";
import type { AppEnv } from "../env";
import { ApiError, conflictOnUnique, notFound } from "../errors";
import { z } from "zod";

const GetQuery = z.strictObject({ version: z.coerce.number().int().min(1).optional() });

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
  createdAt: iso(row.createdAt),
  updatedAt: iso(row.updatedAt),
  versionCreatedAt: iso(createdAt),
  spec: JSON.parse(spec) as Dag,
});

export function registerDags(app: Hono<AppEnv>) {
  const live = (workspaceId: string, name: string) => and(eq(dags.workspaceId, workspaceId), eq(dags.name, name), isNull(dags.deletedAt));

  app.post("/v1/dags:validate", requireScope("read"), async (c) => {
    const dag = acceptDag(await readDocument(c));
    return c.json({ valid: true, dag });
  });

  app.post("/v1/dags", requireScope("write"), async (c) => {
    const dag = acceptDag(await readDocument(c));
    const db = c.var.db;
    const now = Date.now();
    const row: DagRow = { id: newId(now), workspaceId: c.var.principal.workspaceId, name: dag.name, latestVersion: 1, createdAt: now, updatedAt: now, deletedAt: null };
    const spec = JSON.stringify(dag);
    await db.batch([db.insert(dags).values(row), db.insert(dagVersions).values({ dagId: row.id, version: 1, spec, createdAt: now })]).catch(conflictOnUnique(`a DAG named "${dag.name}" already exists; PUT /v1/dags/${dag.name} adds a version`));
    return c.json(dagView(row, 1, spec, now), 201);
  });

  app.put("/v1/dags/:name", requireScope("write"), async (c) => {
    const name = c.req.param("name");
    const dag = acceptDag(await readDocument(c));
    if (dag.name !== name) {
      throw new ApiError("invalid_dag", "the DAG's name does not match the URL", [{ path: "name", message: `the document names "${dag.name}" but the URL names "${name}"` }]);
    }
    const db = c.var.db;
    const spec = JSON.stringify(dag);
    const now = Date.now();
    const existing = await db.select().from(dags).where(live(c.var.principal.workspaceId, name)).get();
    if (!existing) {
      const row: DagRow = { id: newId(now), workspaceId: c.var.principal.workspaceId, name, latestVersion: 1, createdAt: now, updatedAt: now, deletedAt: null };
      await db.batch([db.insert(dags).values(row), db.insert(dagVersions).values({ dagId: row.id, version: 1, spec, createdAt: now })]).catch(conflictOnUnique(`DAG "${name}" was created concurrently; retry`));
      return c.json(dagView(row, 1, spec, now), 201);
    }
    const latest = await db.select().from(dagVersions).where(and(eq(dagVersions.dagId, existing.id), eq(dagVersions.version, existing.latestVersion))).get();
    if (latest?.spec === spec) return c.json(dagView(existing, latest.version, latest.spec, latest.createdAt));
    const version = existing.latestVersion + 1;
    // The version row's primary key makes a concurrent PUT of the same version fail as a whole.
    await db
      .batch([
        db.insert(dagVersions).values({ dagId: existing.id, version, spec, createdAt: now }),
        db.update(dags).set({ latestVersion: version, updatedAt: now }).where(eq(dags.id, existing.id)),
      ])
      .catch(conflictOnUnique(`DAG "${name}" was changed concurrently; retry`));
    return c.json(dagView({ ...existing, latestVersion: version, updatedAt: now }, version, spec, now));
  });

  app.get("/v1/dags", requireScope("read"), async (c) => {
    const q = validate(PageQuery, c.req.query(), "query string");
    const rows = await c.var.db
      .select({ row: dags, spec: dagVersions.spec })
      .from(dags)
      .innerJoin(dagVersions, and(eq(dagVersions.dagId, dags.id), eq(dagVersions.version, dags.latestVersion)))
      .where(and(eq(dags.workspaceId, c.var.principal.workspaceId), isNull(dags.deletedAt), q.cursor ? gt(dags.name, q.cursor) : undefined))
      .orderBy(asc(dags.name))
      .limit(q.limit + 1);
    return c.json(
      pageOf(
        rows,
        q.limit,
        ({ row }) => row.name,
        ({ row, spec }) => ({
          name: row.name,
          latestVersion: row.latestVersion,
          description: (JSON.parse(spec) as Dag).description ?? null,
          createdAt: iso(row.createdAt),
          updatedAt: iso(row.updatedAt),
        }),
      ),
    );
  });

  app.get("/v1/dags/:name", requireScope("read"), async (c) => {
    const q = validate(GetQuery, c.req.query(), "query string");
    const name = c.req.param("name");
    const row = await c.var.db.select().from(dags).where(live(c.var.principal.workspaceId, name)).get();
    if (!row) throw notFound(`DAG "${name}"`);
    const version = q.version ?? row.latestVersion;
    const v = await c.var.db.select().from(dagVersions).where(and(eq(dagVersions.dagId, row.id), eq(dagVersions.version, version))).get();
    if (!v) throw notFound(`version ${version} of DAG "${name}" (latest is ${row.latestVersion})`);
    return c.json(dagView(row, v.version, v.spec, v.createdAt));
  });

  app.get("/v1/dags/:name/versions", requireScope("read"), async (c) => {
    const name = c.req.param("name");
    const row = await c.var.db.select().from(dags).where(live(c.var.principal.workspaceId, name)).get();
    if (!row) throw notFound(`DAG "${name}"`);
    const versions = await c.var.db
      .select({ version: dagVersions.version, createdAt: dagVersions.createdAt })
      .from(dagVersions)
      .where(eq(dagVersions.dagId, row.id))
      .orderBy(desc(dagVersions.version));
    return c.json({ items: versions.map((v) => ({ version: v.version, createdAt: iso(v.createdAt) })), nextCursor: null });
  });

  app.delete("/v1/dags/:name", requireScope("write"), async (c) => {
    const name = c.req.param("name");
    const db = c.var.db;
    const row = await db.select().from(dags).where(live(c.var.principal.workspaceId, name)).get();
    if (!row) throw notFound(`DAG "${name}"`);
    const sched = await db.select({ name: schedules.name }).from(schedules).where(and(eq(schedules.workspaceId, row.workspaceId), eq(schedules.dagName, name))).limit(5);
    if (sched.length > 0) throw new ApiError("conflict", `DAG "${name}" is used by schedules ${sched.map((s) => `"${s.name}"`).join(", ")}; delete them first`);
    // Hidden, not erased: its runs stay visible and keep pointing at their version.
    await db.update(dags).set({ deletedAt: Date.now() }).where(eq(dags.id, row.id));
    return c.json({ deleted: true, name });
  });
}
