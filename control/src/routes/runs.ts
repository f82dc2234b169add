/**
 * /v1/runs — submit (idempotent with an `Idempotency-Key` header), list with cursor pagination,
 * get with node runs and counters, cancel (`?force=true` when the cluster running it is lost),
 * resume a failed or cancelled run (idempotent like a submit).
 */
import { and, desc, eq, lt } from "drizzle-orm";
import { z } from "zod";
import { dagRuns } from "../../../db/schema";
import { LogText, NodeLogQuery, NodeRunDetail, RunCancelQuery, RunListQuery, RunPage, RunResume, RunSubmit, RunView } from "../../../proto/api";
import { canonicalJson, sha256Hex } from "../crypto";
import { notFound } from "../errors";
import { advanceRun } from "../runs/advance";
import { resumeRun } from "../runs/resume";
import { submitRun } from "../runs/submit";
import { controlPlaneMlflow, readNodeLog } from "../runs/logs";
import { loadNodeRunDetail, loadRunView, mlflowRunUrl, runSummary, withMlflowLinks } from "../runs/views";
import { SCHEDULE_KEY_PREFIX } from "../schedules/tick";
import { route } from "./define";
import { pageOf } from "./paging";

/** Keys of the schedules' own namespace are refused, so no user can pre-empt a scheduled run. */
const IDEMPOTENCY_KEY = new RegExp(`^(?!${SCHEDULE_KEY_PREFIX.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")})[\\x21-\\x7e]{1,200}$`);
const SubmitHeaders = z.object({
  "Idempotency-Key": z
    .string()
    .regex(IDEMPOTENCY_KEY, `1 to 200 visible ASCII characters, not starting with "${SCHEDULE_KEY_PREFIX}" (kept for schedules)`)
    .optional()
    .describe("A retry with the same key and the same request returns the run the first one made (200 instead of 201)."),
});

export const runRoutes = [
  route({
    method: "post",
    path: "/v1/runs",
    summary: "Submit a run (Idempotency-Key makes a retry return the same run)",
    description: "404 for an unknown DAG or version; 422 for params the DAG does not declare or nodes no cluster can run; 409 for an Idempotency-Key already used by a different request.",
    auth: "write",
    headers: SubmitHeaders,
    body: { schema: RunSubmit },
    ok: {
      201: { description: "the new run", schema: RunView },
      200: { description: "the run an earlier request with the same Idempotency-Key made", schema: RunView },
    },
    errors: ["not_found", "conflict", "invalid_dag"],
  }).handle(async (c, { headers, body }) => {
    const key = headers["Idempotency-Key"];
    // Hashed in a canonical form, so a retry that orders its params differently is the same request.
    const requestHash = key ? await sha256Hex(canonicalJson(body)) : undefined;
    const { run, created } = await submitRun(c.var.db, c.var.principal.workspaceId, body, { idempotencyKey: key, requestHash });
    return { status: created ? 201 : 200, body: withMlflowLinks(run, c.env.MLFLOW_UI_URL) };
  }),

  route({
    method: "post",
    path: "/v1/runs/{id}/resume",
    summary: "Resume a failed or cancelled run: a new run of the same DAG version in which the nodes that succeeded are reused (Idempotency-Key makes a retry return the same run)",
    description:
      "The new run (`resumedFrom`: this run) runs every node that did not succeed, and reuses — does not dispatch — every node that succeeded, unless `params` changes its resolved parameters or an upstream node runs again; a reused node's outputs are the old node run's MLflow artifacts. 404 for an unknown run; 409 when the run is not failed or cancelled, or for an Idempotency-Key already used by a different request; 422 for params the DAG does not declare or nodes to run that no cluster can run.",
    auth: "write",
    headers: SubmitHeaders,
    body: { schema: RunResume, optional: true },
    ok: {
      201: { description: "the new run", schema: RunView },
      200: { description: "the run an earlier request with the same Idempotency-Key made", schema: RunView },
    },
    errors: ["not_found", "conflict", "invalid_dag"],
  }).handle(async (c, { params: { id }, headers, body }) => {
    const key = headers["Idempotency-Key"];
    const requestHash = key ? await sha256Hex(canonicalJson({ resume: id, ...body })) : undefined;
    const { run, created } = await resumeRun(c.var.db, c.var.principal.workspaceId, id, body, { idempotencyKey: key, requestHash });
    return { status: created ? 201 : 200, body: withMlflowLinks(run, c.env.MLFLOW_UI_URL) };
  }),

  route({
    method: "get",
    path: "/v1/runs",
    summary: "List runs, newest first",
    auth: "read",
    query: RunListQuery,
    ok: { 200: { description: "a page of runs (without their node runs)", schema: RunPage } },
  }).handle(async (c, { query: q }) => {
    const rows = await c.var.db
      .select()
      .from(dagRuns)
      .where(
        and(
          eq(dagRuns.workspaceId, c.var.principal.workspaceId),
          q.dag ? eq(dagRuns.dagName, q.dag) : undefined,
          q.status ? eq(dagRuns.status, q.status) : undefined,
          q.cursor ? lt(dagRuns.id, q.cursor) : undefined,
        ),
      )
      .orderBy(desc(dagRuns.id))
      .limit(q.limit + 1);
    return {
      status: 200,
      body: pageOf(
        rows,
        q.limit,
        (r) => r.id,
        (r) => withMlflowLinks(runSummary(r), c.env.MLFLOW_UI_URL),
      ),
    };
  }),

  route({
    method: "get",
    path: "/v1/runs/{id}",
    summary: "Get a run with its node runs and counters",
    auth: "read",
    ok: { 200: { description: "the run", schema: RunView } },
    errors: ["not_found"],
  }).handle(async (c, { params: { id } }) => {
    const run = await loadRunView(c.var.db, c.var.principal.workspaceId, id);
    if (!run) throw notFound(`run "${id}"`);
    return { status: 200, body: withMlflowLinks(run, c.env.MLFLOW_UI_URL) };
  }),

  route({
    method: "get",
    path: "/v1/runs/{id}/nodes/{node}",
    summary: "Get one node run: its status and counters, and which partitions its latest attempt failed in, with each one's exit code and the end of its stderr",
    auth: "read",
    ok: { 200: { description: "the node run", schema: NodeRunDetail } },
    errors: ["not_found"],
  }).handle(async (c, { params: { id, node } }) => {
    const detail = await loadNodeRunDetail(c.var.db, c.var.principal.workspaceId, id, node);
    if (!detail) throw notFound(`node "${node}" of run "${id}"`);
    return { status: 200, body: { ...detail, mlflowUrl: mlflowRunUrl(c.env.MLFLOW_UI_URL, detail.mlflowRunId) } };
  }),

  route({
    method: "get",
    path: "/v1/runs/{id}/nodes/{node}/logs",
    summary: "A step's log (stdout or stderr, one partition's), from MLflow, where the agent uploads it while the step runs and at its end",
    description:
      "Follow a log by asking again from `offset` = the `X-Log-Size` of the last answer. 404 when the node has no MLflow run yet or the log is not there yet; 503 when the control plane does not know MLflow's address (MLFLOW_TRACKING_URI).",
    auth: "read",
    query: NodeLogQuery,
    ok: { 200: { description: "the log's text from the offset; `X-Log-Size`: its whole size", schema: LogText, contentType: "text/plain; charset=utf-8" } },
    errors: ["not_found", "unavailable"],
  }).handle(async (c, { params: { id, node }, query }) => {
    const detail = await loadNodeRunDetail(c.var.db, c.var.principal.workspaceId, id, node);
    if (!detail) throw notFound(`node "${node}" of run "${id}"`);
    const which = `the ${query.stream} log of ${query.partition === undefined ? `node "${node}"` : `partition ${query.partition} of node "${node}"`}`;
    if (!detail.mlflowRunId) throw notFound(`${which}: the node has no MLflow run yet`);
    const log = await readNodeLog(controlPlaneMlflow(c.env), detail.mlflowRunId, { ...query, ...(query.partition !== undefined ? { partition: query.partition } : {}) });
    if (!log) throw notFound(`${which}: not uploaded yet`);
    return { status: 200, body: new TextDecoder().decode(log.bytes), headers: { "x-log-size": String(log.size), "cache-control": "no-store" } };
  }),

  route({
    method: "post",
    path: "/v1/runs/{id}/cancel",
    summary: "Cancel a run (202 while agents stop its steps; force=true: cancelled at once, not waiting for agents that may be gone)",
    description: "409 when the run is already over.",
    auth: "write",
    query: RunCancelQuery,
    ok: {
      202: { description: "cancelling: agents are stopping its steps", schema: RunView },
      200: { description: "cancelled", schema: RunView },
    },
    errors: ["not_found", "conflict"],
  }).handle(async (c, { params: { id }, query: { force } }) => {
    const run = await advanceRun(c.var.db, c.var.principal.workspaceId, id, { cancel: true, force });
    if (!run) throw notFound(`run "${id}"`);
    return { status: run.status === "cancelled" ? 200 : 202, body: withMlflowLinks(run, c.env.MLFLOW_UI_URL) };
  }),
];
