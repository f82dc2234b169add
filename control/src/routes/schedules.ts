/**
 * /v1/schedules — periodic runs (micro-batch inference). A Workers Cron Trigger creates the runs
 * that are due (see schedules/tick.ts).
 */
import { and, eq, isNull } from "drizzle-orm";
import type { Hono } from "hono";
import { z } from "zod";
import { dags, schedules } from "../../../db/schema";
import { PageQuery, ScheduleCreate } from "../../../proto/api";
import type { Dag } from "../../../proto/dag";
import { requireScope } from "../auth";
import { readBody, readQuery } from "../body";
import { iso, newId } from "../crypto";
import { listPage } from "./paging";
import type { AppEnv } from "../env";
import { ApiError, conflictOnUnique, notFound } from "../errors";
import { dagVersions } from "../../../db/schema";
import { cronProblems, nextOccurrence } from "../schedules/cron";

const ScheduleUpdate = z.strictObject({ enabled: z.boolean() });
type Row = typeof schedules.$inferSelect;

const view = (s: Row) => ({
  id: s.id,
  name: s.name,
  dag: s.dagName,
  version: s.dagVersion,
  cron: s.cron,
  timezone: s.timezone,
  params: s.params,
  overlapPolicy: s.overlapPolicy,
  enabled: s.enabled,
  nextRunAt: iso(s.nextRunAt),
  lastRunAt: iso(s.lastRunAt),
  lastRunId: s.lastRunId,
  createdAt: iso(s.createdAt),
});

export function registerSchedules(app: Hono<AppEnv>) {
  const byName = (ws: string, name: string) => and(eq(schedules.workspaceId, ws), eq(schedules.name, name));

  app.post("/v1/schedules", requireScope("write"), async (c) => {
    const body = await readBody(c, ScheduleCreate);
    const problems = cronProblems(body.cron, body.timezone);
    if (problems.length > 0) throw new ApiError("invalid_request", "invalid schedule", problems);
    const ws = c.var.principal.workspaceId;
    const dag = await c.var.db
      .select({ spec: dagVersions.spec })
      .from(dags)
      .innerJoin(dagVersions, and(eq(dagVersions.dagId, dags.id), eq(dagVersions.version, body.version ?? dags.latestVersion)))
      .where(and(eq(dags.workspaceId, ws), eq(dags.name, body.dag), isNull(dags.deletedAt)))
      .get();
    if (!dag) throw new ApiError("not_found", `DAG "${body.dag}"${body.version ? ` version ${body.version}` : ""} not found`, [{ path: body.version ? "version" : "dag", message: "not found" }]);
    const declared = (JSON.parse(dag.spec) as Dag).params ?? {};
    const unknown = Object.keys(body.params).filter((k) => !(k in declared));
    if (unknown.length > 0) {
      throw new ApiError("invalid_dag", "the schedule's params are not declared by the DAG", unknown.map((k) => ({ path: `params.${k}`, message: `the DAG declares no parameter "${k}"` })));
    }
    const now = Date.now();
    const row: Row = {
      id: newId(now),
      workspaceId: ws,
      name: body.name,
      dagName: body.dag,
      dagVersion: body.version ?? null,
      cron: body.cron,
      timezone: body.timezone,
      params: body.params,
      overlapPolicy: body.overlapPolicy,
      enabled: body.enabled,
      nextRunAt: nextOccurrence(body.cron, body.timezone, now),
      lastRunAt: null,
      lastRunId: null,
      createdAt: now,
    };
    await c.var.db.insert(schedules).values(row).catch(conflictOnUnique(`a schedule named "${body.name}" already exists`, [{ path: "name", message: "already taken" }]));
    return c.json(view(row), 201);
  });

  app.get("/v1/schedules", requireScope("read"), async (c) => {
    const q = readQuery(c, PageQuery);
    return c.json(await listPage(c.var.db, schedules, { workspace: schedules.workspaceId, key: schedules.name, keyOf: (r) => r.name }, c.var.principal.workspaceId, q, view));
  });

  app.get("/v1/schedules/:name", requireScope("read"), async (c) => {
    const row = await c.var.db.select().from(schedules).where(byName(c.var.principal.workspaceId, c.req.param("name"))).get();
    if (!row) throw notFound(`schedule "${c.req.param("name")}"`);
    return c.json(view(row));
  });

  /** Pause or resume. Resuming starts from the next occurrence after now, not from missed ones. */
  app.patch("/v1/schedules/:name", requireScope("write"), async (c) => {
    const body = await readBody(c, ScheduleUpdate);
    const ws = c.var.principal.workspaceId;
    const row = await c.var.db.select().from(schedules).where(byName(ws, c.req.param("name"))).get();
    if (!row) throw notFound(`schedule "${c.req.param("name")}"`);
    const nextRunAt = body.enabled ? nextOccurrence(row.cron, row.timezone, Date.now()) : row.nextRunAt;
    const [updated] = await c.var.db.update(schedules).set({ enabled: body.enabled, nextRunAt }).where(eq(schedules.id, row.id)).returning();
    return c.json(view(updated!));
  });

  app.delete("/v1/schedules/:name", requireScope("write"), async (c) => {
    const [row] = await c.var.db.delete(schedules).where(byName(c.var.principal.workspaceId, c.req.param("name"))).returning();
    if (!row) throw notFound(`schedule "${c.req.param("name")}"`);
    return c.json({ deleted: true, name: row.name });
  });
}
