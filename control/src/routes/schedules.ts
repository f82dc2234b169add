/**
 * /v1/schedules — periodic runs (micro-batch inference). A Workers Cron Trigger creates the runs
 * that are due (see schedules/tick.ts).
 */
import { and, eq, isNull } from "drizzle-orm";
import { dagVersions, dags, schedules } from "../../../db/schema";
import { Deleted, PageQuery, ScheduleCreate, SchedulePage, ScheduleUpdate, ScheduleView, type ParamValue } from "../../../proto/api";
import type { Dag } from "../../../proto/dag";
import { iso, newId } from "../crypto";
import { ApiError, conflictOnUnique, notFound } from "../errors";
import { cronProblems, nextOccurrence } from "../schedules/cron";
import { route } from "./define";
import { listPage } from "./paging";

type Row = typeof schedules.$inferSelect;

const view = (s: Row) => ({
  id: s.id,
  name: s.name,
  dag: s.dagName,
  version: s.dagVersion,
  cron: s.cron,
  timezone: s.timezone,
  params: s.params as Record<string, ParamValue>,
  overlapPolicy: s.overlapPolicy,
  enabled: s.enabled,
  nextRunAt: iso(s.nextRunAt),
  lastRunAt: iso(s.lastRunAt),
  lastRunId: s.lastRunId,
  createdAt: iso(s.createdAt)!,
});

const byName = (ws: string, name: string) => and(eq(schedules.workspaceId, ws), eq(schedules.name, name));

export const scheduleRoutes = [
  route({
    method: "post",
    path: "/v1/schedules",
    summary: "Create a schedule",
    description:
      "The cron expression (5 fields) and the IANA time zone are checked beyond their schema: 400 names what is wrong. 404 for an unknown DAG or version; 422 for params the DAG does not declare.",
    auth: "write",
    body: { schema: ScheduleCreate },
    ok: { 201: { description: "the schedule, with its next run time", schema: ScheduleView } },
    errors: ["not_found", "invalid_dag", "conflict"],
  }).handle(async (c, { body }) => {
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
      throw new ApiError(
        "invalid_dag",
        "the schedule's params are not declared by the DAG",
        unknown.map((k) => ({ path: `params.${k}`, message: `the DAG declares no parameter "${k}"` })),
      );
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
    await c.var.db
      .insert(schedules)
      .values(row)
      .catch(conflictOnUnique(`a schedule named "${body.name}" already exists`, [{ path: "name", message: "already taken" }]));
    return { status: 201, body: view(row) };
  }),

  route({ method: "get", path: "/v1/schedules", summary: "List schedules", auth: "read", query: PageQuery, ok: { 200: { description: "a page of schedules, by name", schema: SchedulePage } } }).handle(
    async (c, { query }) => ({
      status: 200,
      body: await listPage(c.var.db, schedules, { workspace: schedules.workspaceId, key: schedules.name, keyOf: (r) => r.name }, c.var.principal.workspaceId, query, view),
    }),
  ),

  route({ method: "get", path: "/v1/schedules/{name}", summary: "Get a schedule", auth: "read", ok: { 200: { description: "the schedule", schema: ScheduleView } }, errors: ["not_found"] }).handle(
    async (c, { params: { name } }) => {
      const row = await c.var.db.select().from(schedules).where(byName(c.var.principal.workspaceId, name)).get();
      if (!row) throw notFound(`schedule "${name}"`);
      return { status: 200, body: view(row) };
    },
  ),

  /** Pause or resume. Resuming starts from the next occurrence after now, not from missed ones. */
  route({
    method: "patch",
    path: "/v1/schedules/{name}",
    summary: "Pause or resume a schedule (resuming skips the occurrences missed while paused)",
    auth: "write",
    body: { schema: ScheduleUpdate },
    ok: { 200: { description: "the schedule", schema: ScheduleView } },
    errors: ["not_found"],
  }).handle(async (c, { params: { name }, body }) => {
    const ws = c.var.principal.workspaceId;
    const row = await c.var.db.select().from(schedules).where(byName(ws, name)).get();
    if (!row) throw notFound(`schedule "${name}"`);
    const nextRunAt = body.enabled ? nextOccurrence(row.cron, row.timezone, Date.now()) : row.nextRunAt;
    const [updated] = await c.var.db.update(schedules).set({ enabled: body.enabled, nextRunAt }).where(eq(schedules.id, row.id)).returning();
    return { status: 200, body: view(updated!) };
  }),

  route({
    method: "delete",
    path: "/v1/schedules/{name}",
    summary: "Delete a schedule",
    auth: "write",
    ok: { 200: { description: "the schedule is deleted", schema: Deleted } },
    errors: ["not_found"],
  }).handle(async (c, { params: { name } }) => {
    const [row] = await c.var.db.delete(schedules).where(byName(c.var.principal.workspaceId, name)).returning();
    if (!row) throw notFound(`schedule "${name}"`);
    return { status: 200, body: { deleted: true as const, name: row.name } };
  }),
];
