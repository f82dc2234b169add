/**
 * /v1/runs — submit (idempotent with an `Idempotency-Key` header), list with cursor pagination,
 * get with node runs and counters, cancel (`?force=true` when the cluster running it is lost).
 */
import { and, desc, eq, lt } from "drizzle-orm";
import type { Hono } from "hono";
import { dagRuns } from "../../../db/schema";
import { RunCancelQuery, RunListQuery, RunSubmit } from "../../../proto/api";
import { requireScope } from "../auth";
import { readBody, readQuery } from "../body";
import { canonicalJson, sha256Hex } from "../crypto";
import { pageOf } from "./paging";
import type { AppEnv } from "../env";
import { ApiError, notFound } from "../errors";
import { advanceRun } from "../runs/advance";
import { submitRun } from "../runs/submit";
import { SCHEDULE_KEY_PREFIX } from "../schedules/tick";
import { loadRunView, runSummary, withMlflowLinks } from "../runs/views";

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,200}$/;

export function registerRuns(app: Hono<AppEnv>) {
  app.post("/v1/runs", requireScope("write"), async (c) => {
    const body = await readBody(c, RunSubmit);
    const key = c.req.header("idempotency-key");
    if (key !== undefined && (!IDEMPOTENCY_KEY.test(key) || key.startsWith(SCHEDULE_KEY_PREFIX))) {
      throw new ApiError("invalid_request", "invalid Idempotency-Key header", [
        { path: "Idempotency-Key", message: `1 to 200 visible ASCII characters, not starting with "${SCHEDULE_KEY_PREFIX}" (kept for schedules)` },
      ]);
    }
    // Hashed in a canonical form, so a retry that orders its params differently is the same request.
    const requestHash = key ? await sha256Hex(canonicalJson(body)) : undefined;
    const { run, created } = await submitRun(c.var.db, c.var.principal.workspaceId, body, { idempotencyKey: key, requestHash });
    return c.json(withMlflowLinks(run, c.env.MLFLOW_UI_URL), created ? 201 : 200);
  });

  app.get("/v1/runs", requireScope("read"), async (c) => {
    const q = readQuery(c, RunListQuery);
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
    return c.json(pageOf(rows, q.limit, (r) => r.id, (r) => withMlflowLinks(runSummary(r), c.env.MLFLOW_UI_URL)));
  });

  app.get("/v1/runs/:id", requireScope("read"), async (c) => {
    const run = await loadRunView(c.var.db, c.var.principal.workspaceId, c.req.param("id"));
    if (!run) throw notFound(`run "${c.req.param("id")}"`);
    return c.json(withMlflowLinks(run, c.env.MLFLOW_UI_URL));
  });

  app.post("/v1/runs/:id/cancel", requireScope("write"), async (c) => {
    const { force } = readQuery(c, RunCancelQuery);
    const run = await advanceRun(c.var.db, c.var.principal.workspaceId, c.req.param("id"), { cancel: true, force });
    if (!run) throw notFound(`run "${c.req.param("id")}"`);
    return c.json(withMlflowLinks(run, c.env.MLFLOW_UI_URL), run.status === "cancelled" ? 200 : 202);
  });
}
