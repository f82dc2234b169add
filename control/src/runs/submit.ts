/**
 * Submitting a run: two D1 round trips whatever the DAG's size — one batch of reads (the DAG
 * version, the clusters, an earlier submit with the same Idempotency-Key) and one transactional
 * batch of writes (the run, its node runs, the outbox rows for the first nodes, an event).
 */
import { and, desc, eq, isNotNull, isNull } from "drizzle-orm";
import { sql } from "drizzle-orm";
import { clusters, dagRuns, dagVersions, dags } from "../../../db/schema";
import type { RunSubmit, RunView } from "../../../proto/api";
import { resolveWindows, type Dag, type RunWindows } from "../../../proto/dag";
import type { ProblemDetail } from "../../../proto/errors";
import { isTerminalRun, type NodeStatus } from "../../../proto/status";
import { newId } from "../crypto";
import { writeBatch, type Db } from "../db";
import { ApiError, isUniqueViolation } from "../errors";
import { decide } from "../scheduler";
import { planContinued, planResume, type PartialFailure, type ResumeInput, type ResumePlan } from "../scheduler/resume";
import { chunked, newStateToken, statementsFor, type RunContext } from "./apply";
import { placeNodes } from "./placement";
import { loadRunView, runViewOf } from "./views";

export interface SubmitOptions {
  idempotencyKey?: string | undefined;
  /** Digest of the request, to refuse a reused key with another body. */
  requestHash?: string | undefined;
  scheduleId?: string | undefined;
  /** Create the run `queued` without starting it (a schedule's `queue` overlap policy). */
  hold?: boolean;
  /** A resume (`resume.ts`): the run resumed, whose DAG version and windows the new run takes, and how its nodes ended. */
  resume?: ResumeOf;
}

/** What a resume gives a submit: the run resumed and its node runs' outcomes. */
export interface ResumeOf {
  run: { id: string; dagId: string; dagVersion: number; params: Record<string, string | number | boolean>; windows: RunWindows | null };
  nodes: ResumeInput["oldNodes"];
}

export async function submitRun(db: Db, workspaceId: string, req: RunSubmit, opts: SubmitOptions, now = Date.now()): Promise<{ run: RunView; created: boolean }> {
  const [found, clusterRows, prior, previous] = await db.batch([
    db
      .select({ dag: dags, spec: dagVersions.spec, version: dagVersions.version })
      .from(dags)
      .innerJoin(dagVersions, and(eq(dagVersions.dagId, dags.id), req.version ? eq(dagVersions.version, req.version) : eq(dagVersions.version, dags.latestVersion)))
      // A resume takes the resumed run's DAG (by id: its name may have been deleted and taken again).
      .where(and(eq(dags.workspaceId, workspaceId), opts.resume ? eq(dags.id, opts.resume.run.dagId) : and(eq(dags.name, req.dag), isNull(dags.deletedAt)))),
    db.select().from(clusters).where(eq(clusters.workspaceId, workspaceId)),
    db
      .select({ id: dagRuns.id, requestHash: dagRuns.requestHash })
      .from(dagRuns)
      .where(and(eq(dagRuns.workspaceId, workspaceId), opts.idempotencyKey ? eq(dagRuns.idempotencyKey, opts.idempotencyKey) : sql`0`)),
    previousWindows(db, workspaceId, req.dag, opts.scheduleId),
  ]);
  if (prior[0]) return { run: await replay(db, workspaceId, prior[0], opts), created: false };
  const hit = found[0];
  if (!hit) {
    throw new ApiError("not_found", req.version ? `version ${req.version} of DAG "${req.dag}" not found` : `DAG "${req.dag}" not found`, [
      { path: req.version ? "version" : "dag", message: "not found" },
    ]);
  }
  const dag = JSON.parse(hit.spec) as Dag;
  const { params, problems } = mergeParams(dag, req.params);
  const resumeInput: ResumeInput | undefined = opts.resume ? { dag, oldParams: opts.resume.run.params, newParams: params, oldNodes: opts.resume.nodes } : undefined;
  const reused: ResumePlan = resumeInput ? planResume(resumeInput) : new Map();
  // Failed nodes whose first attempt here runs only the partitions that failed there.
  const continued: Map<string, PartialFailure> = resumeInput ? planContinued(resumeInput, reused) : new Map();
  const placed = placeNodes(dag, clusterRows, now);
  // A reused node runs nowhere: where it would run does not matter.
  const reusedPaths = new Set(dag.nodes.flatMap((n, i) => (reused.has(n.id) ? [`nodes[${i}].cluster`] : [])));
  problems.push(...placed.problems.filter((p) => !reusedPaths.has(p.path)));
  if (problems.length > 0) throw new ApiError("invalid_dag", `the run cannot start: ${problems.length} problem${problems.length === 1 ? "" : "s"}`, problems);

  const runId = newId(now);
  // A held run fixes its windows when it is released (the run before it may not have ended yet).
  // A resumed run reads the same data as the run it resumes: its windows.
  const windows = opts.hold ? null : opts.resume?.run.windows ? opts.resume.run.windows : resolveWindows(dag, now, previous[0]?.windows ?? null);
  const ctx: RunContext = { runId, workspaceId, dag, dagVersion: hit.version, params, mlflowRunId: null, windows, runStatus: "queued", stateToken: newStateToken(), nodes: new Map() };
  for (const node of dag.nodes) {
    const from = reused.get(node.id);
    ctx.nodes.set(node.id, {
      id: `${runId}-${node.id}`,
      attempt: 0,
      clusterId: placed.placement.get(node.id) ?? null,
      status: from ? "reused" : "pending",
      ...(from ? { reusedFrom: from, mlflowRunId: from.mlflowRunId } : {}),
      ...(continued.has(node.id) ? { continues: continued.get(node.id)! } : {}),
    });
  }
  const decision = opts.hold
    ? { dispatch: [], cancel: [], skip: [], cancelPending: [], abandon: [], accept: [], runStatus: "queued" as const }
    : decide({ dag, runStatus: "queued", cancelRequested: false, nodes: [...ctx.nodes].map(([nodeId, n]) => ({ nodeId, status: n.status, attempt: 0 })) });

  const run = {
    id: runId,
    workspaceId,
    dagId: hit.dag.id,
    dagName: dag.name,
    dagVersion: hit.version,
    status: "queued" as const,
    params,
    cancelRequested: false,
    idempotencyKey: opts.idempotencyKey ?? null,
    requestHash: opts.requestHash ?? null,
    scheduleId: opts.scheduleId ?? null,
    resumedFrom: opts.resume?.run.id ?? null,
    mlflowRunId: null,
    windows,
    stateToken: ctx.stateToken,
    createdAt: now,
    startedAt: null,
    finishedAt: null,
  };
  const nodeRows = [...ctx.nodes].map(([nodeId, n]) => ({
    id: n.id,
    nodeId,
    clusterId: n.clusterId,
    status: n.status,
    reusedFrom: n.reusedFrom ?? null,
    mlflowRunId: n.mlflowRunId ?? null,
    finishedAt: n.status === "reused" ? now : null,
  }));
  const first = statementsFor(db, ctx, decision, now);
  try {
    await writeBatch(db, [
      db.insert(dagRuns).values(run),
      ...chunked(nodeRows).map((part) =>
        db.run(sql`
        INSERT INTO node_runs (id, run_id, node_id, status, attempt, cluster_id, mlflow_run_id, reused_from, finished_at, updated_at)
        SELECT json_extract(value, '$.id'), ${runId}, json_extract(value, '$.nodeId'), json_extract(value, '$.status'), 0, json_extract(value, '$.clusterId'),
          json_extract(value, '$.mlflowRunId'), json(json_extract(value, '$.reusedFrom')), json_extract(value, '$.finishedAt'), ${now}
        FROM json_each(${part})`),
      ),
      db.run(
        sql`INSERT INTO events (workspace_id, run_id, type, data, at) VALUES (${workspaceId}, ${runId}, 'run.submitted', ${JSON.stringify({ dag: dag.name, version: hit.version, scheduleId: opts.scheduleId ?? null, ...(opts.resume ? { resumedFrom: opts.resume.run.id, reused: [...reused.keys()], continued: Object.fromEntries([...continued].map(([id, c]) => [id, c.partitions])) } : {}) })}, ${now})`,
      ),
      ...(opts.resume
        ? [
            db.run(
              sql`INSERT INTO events (workspace_id, run_id, type, data, at) VALUES (${workspaceId}, ${opts.resume.run.id}, 'run.resumed', ${JSON.stringify({ by: runId, reused: [...reused.keys()] })}, ${now})`,
            ),
          ]
        : []),
      // A new run: nobody else can have claimed it yet.
      first.claim,
      ...first.writes,
    ]);
  } catch (err) {
    // Two submits with one Idempotency-Key raced: the unique index let one through; answer with it.
    if (opts.idempotencyKey && isUniqueViolation(err)) return submitRun(db, workspaceId, req, opts, now);
    throw err;
  }
  const status = new Map<string, { status: NodeStatus; attempt: number }>();
  for (const d of decision.dispatch) status.set(d.nodeId, { status: "dispatched", attempt: d.attempt });
  return {
    run: runViewOf(
      { ...run, status: decision.runStatus, startedAt: decision.runStatus === "queued" ? null : now, finishedAt: isTerminalRun(decision.runStatus) ? now : null },
      nodeRows.map((n) => ({ ...n, status: status.get(n.nodeId)?.status ?? n.status, attempt: status.get(n.nodeId)?.attempt ?? 0 })),
    ),
    created: true,
  };
}

async function replay(db: Db, workspaceId: string, prior: { id: string; requestHash: string | null }, opts: SubmitOptions): Promise<RunView> {
  if (opts.requestHash && prior.requestHash && prior.requestHash !== opts.requestHash) {
    throw new ApiError("conflict", "this Idempotency-Key was already used for a different request", [{ path: "Idempotency-Key", message: `already used by run ${prior.id}` }]);
  }
  return (await loadRunView(db, workspaceId, prior.id))!;
}

/**
 * The windows of the latest successful run of the same schedule (or, for a run of no schedule, of
 * the same DAG): where `since: lastRun` windows start.
 */
export function previousWindows(db: Db, workspaceId: string, dagName: string, scheduleId: string | undefined) {
  return db
    .select({ windows: dagRuns.windows })
    .from(dagRuns)
    .where(
      and(
        eq(dagRuns.workspaceId, workspaceId),
        scheduleId ? eq(dagRuns.scheduleId, scheduleId) : and(eq(dagRuns.dagName, dagName), isNull(dagRuns.scheduleId)),
        eq(dagRuns.status, "succeeded"),
        isNotNull(dagRuns.windows),
      ),
    )
    .orderBy(desc(dagRuns.id))
    .limit(1);
}

/** DAG-level params are defaults; a submit may override the declared ones, and only those. */
function mergeParams(dag: Dag, given: Record<string, string | number | boolean>) {
  const declared = dag.params ?? {};
  const problems: ProblemDetail[] = [];
  for (const key of Object.keys(given)) {
    if (!(key in declared)) {
      const names = Object.keys(declared);
      problems.push({ path: `params.${key}`, message: `the DAG declares no parameter "${key}" (declared: ${names.length ? names.join(", ") : "none"})` });
    }
  }
  return { params: { ...declared, ...given }, problems };
}
