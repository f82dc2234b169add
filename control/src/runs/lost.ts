/**
 * The Cron Trigger's lost-cluster check: active node runs on clusters that stopped heartbeating
 * are given up per their DAG's `onClusterLost` (the pure rules: `scheduler/lost.ts`).
 *
 * One read batch finds the candidates (active nodes on offline clusters, their runs, DAG versions,
 * node rows and the workspaces' clusters). For each run with something to do, the outcome and the
 * scheduler's next decision on the state it leaves are written in one batch behind the run's claim
 * (`runs/apply.ts`), like any decision: two ticks at once, or a tick racing an agent's event, cannot
 * both win — the loser writes nothing and decides again on a fresh read. The batch:
 * - marks the attempt lost (`lost_attempts` += `{attempt, clusterId, since, at}`), the node
 *   `failed` (for good when not retried) with a message naming the cluster;
 * - for `retryElsewhere`, moves the node to the new cluster: the decision dispatches its next
 *   attempt there (its `start` goes to that cluster's subject);
 * - sends the lost cluster `cancel` for the lost attempt: its agent, if it comes back, stops it;
 * - logs a `node.lost` event (`node.moved` for a pending node that follows the retry).
 */
import { and, eq, inArray, sql } from "drizzle-orm";
import { clusters as clustersTable, dagRuns, dagVersions, nodeRuns } from "../../../db/schema";
import type { LostAttempt } from "../../../proto/api";
import type { MlflowClient } from "../../../proto/mlflow";
import type { Dag } from "../../../proto/dag";
import { workMsgId, workSubject, type WorkCancel } from "../../../proto/messages";
import { ACTIVE_NODE_STATUSES } from "../../../proto/status";
import { sqlList, writeBatch, type Db, type Writable } from "../db";
import { OFFLINE_AFTER_MS } from "../routes/clusters";
import { decideLost, type LostOutcome } from "../scheduler/lost";
import { placementCluster } from "./placement";
import { planAdvance } from "./advance";
import { claimHeld, newStateToken, outboxInserts } from "./apply";

type RunRow = typeof dagRuns.$inferSelect;
type NodeRow = typeof nodeRuns.$inferSelect;
type ClusterRow = typeof clustersTable.$inferSelect;

/** Runs looked at per tick: the rest wait for the next minute. */
const MAX_RUNS = 100;
/** A decision lost to a concurrent one is made again on a fresh read, this many times at most. */
const MAX_TRIES = 8;

export interface LostReport {
  /** Attempts given up, and of those, retried on another cluster. */
  lost: number;
  retried: number;
  /** Lost attempts whose MLflow run was tagged `parallels.lost`. */
  tagged: number;
}

/**
 * `mlflow` (when the control plane knows MLflow's address): the lost attempts' MLflow runs are
 * tagged `parallels.lost` = the node's message, so MLflow marks the stale run even if its cluster
 * never comes back to end it (KILLED). Best effort, once: MLflow's trouble never holds up the rest.
 */
export async function handleLostClusters(db: Db, now: number, mlflow?: MlflowClient): Promise<LostReport> {
  const report: LostReport = { lost: 0, retried: 0, tagged: 0 };
  const silent = sql`SELECT id FROM clusters WHERE last_heartbeat_at IS NULL OR last_heartbeat_at < ${now - OFFLINE_AFTER_MS}`;
  // The node_runs_cluster index (cluster_id, status) finds them without a scan of all node runs.
  const candidates = await db
    .selectDistinct({ runId: nodeRuns.runId })
    .from(nodeRuns)
    .where(sql`${nodeRuns.clusterId} IN (${silent}) AND ${nodeRuns.status} IN ${sqlList(ACTIVE_NODE_STATUSES)} AND ${nodeRuns.updatedAt} < ${now - OFFLINE_AFTER_MS}`)
    .limit(MAX_RUNS);
  if (candidates.length === 0) return report;
  let loaded = await load(
    db,
    candidates.map((c) => c.runId),
  );
  for (let tries = 1; loaded.length > 0 && tries <= MAX_TRIES; tries++) {
    const lostClaims: string[] = [];
    for (const state of loaded) {
      const plan = planLost(db, state, now);
      if (!plan) continue;
      const results = await writeBatch(db, plan.writes);
      if (!claimHeld(results[0])) {
        lostClaims.push(state.run.id);
        continue;
      }
      const lost = plan.outcomes.filter((o) => o.action.kind !== "move");
      report.lost += lost.length;
      report.retried += plan.outcomes.filter((o) => o.action.kind === "retry").length;
      if (mlflow) report.tagged += await tagLostRuns(mlflow, state.nodes, lost);
    }
    // Another decision on these runs came first (an agent's event, another tick): look again.
    loaded = lostClaims.length > 0 ? await load(db, lostClaims) : [];
  }
  return report;
}

/**
 * Tags each lost attempt's MLflow run. The node row's `mlflow_run_id` is the latest one an agent
 * reported — maybe an earlier attempt's, if the lost one never reported its own — so a run is
 * tagged only if its own tags say it is that node run's that attempt.
 */
async function tagLostRuns(mlflow: MlflowClient, nodes: NodeRow[], lost: LostOutcome[]): Promise<number> {
  let tagged = 0;
  for (const o of lost) {
    const row = nodes.find((n) => n.nodeId === o.nodeId);
    if (!row?.mlflowRunId) continue;
    try {
      const tags = (await mlflow.getRun(row.mlflowRunId)).data.tags;
      if (tags["parallels.nodeRunId"] !== row.id || tags["parallels.attempt"] !== String(o.attempt)) continue;
      await mlflow.setTag(row.mlflowRunId, "parallels.lost", o.message);
      tagged++;
    } catch (e) {
      console.error(JSON.stringify({ msg: "could not tag the lost attempt's MLflow run", nodeRunId: row.id, attempt: o.attempt, error: (e as Error).message }));
    }
  }
  return tagged;
}

interface RunState {
  run: RunRow;
  spec: string;
  nodes: NodeRow[];
  clusters: ClusterRow[];
}

async function load(db: Db, runIds: string[]): Promise<RunState[]> {
  const [runs, nodes, clusters] = await db.batch([
    db
      .select({ run: dagRuns, spec: dagVersions.spec })
      .from(dagRuns)
      .innerJoin(dagVersions, and(eq(dagVersions.dagId, dagRuns.dagId), eq(dagVersions.version, dagRuns.dagVersion)))
      .where(inArray(dagRuns.id, runIds)),
    db.select().from(nodeRuns).where(inArray(nodeRuns.runId, runIds)).orderBy(nodeRuns.id),
    db
      .select()
      .from(clustersTable)
      .where(sql`${clustersTable.workspaceId} IN (SELECT workspace_id FROM dag_runs WHERE id IN (SELECT value FROM json_each(${JSON.stringify(runIds)})))`),
  ]);
  return runs.map(({ run, spec }) => ({ run, spec, nodes: nodes.filter((n) => n.runId === run.id), clusters: clusters.filter((c) => c.workspaceId === run.workspaceId) }));
}

/** The statements giving up a run's lost attempts (claim first), or null: nothing is lost. */
function planLost(db: Db, state: RunState, now: number): { writes: Writable[]; outcomes: LostOutcome[] } | null {
  const { run, spec, nodes } = state;
  const dag = JSON.parse(spec) as Dag;
  let outcomes = decideLost({
    dag,
    runStatus: run.status,
    nodes: nodes.map((n) => ({ nodeId: n.nodeId, status: n.status, attempt: n.attempt, clusterId: n.clusterId, updatedAt: n.updatedAt })),
    clusters: state.clusters,
    now,
    offlineAfterMs: OFFLINE_AFTER_MS,
    placement: state.clusters.map((c) => placementCluster(c, now)),
  });
  if (outcomes.length === 0) return null;
  const token = newStateToken();
  let plan = planAdvance(db, run, spec, after(nodes, outcomes, now), {}, now, token);
  // A retry the scheduler would not dispatch (another node failed the run in the same breath): it fails instead.
  const undispatched = new Set(outcomes.filter((o) => o.action.kind === "retry" && plan.view.nodes?.find((n) => n.nodeId === o.nodeId)?.status !== "dispatched").map((o) => o.nodeId));
  if (undispatched.size > 0) {
    outcomes = outcomes.map((o) =>
      undispatched.has(o.nodeId) ? { ...o, action: { kind: "fail" }, message: `${o.message.replace(/; retried on .*$/, "")}; not retried: the run ${plan.view.status}` } : o,
    );
    plan = planAdvance(db, run, spec, after(nodes, outcomes, now), {}, now, token);
  }
  // A held (`queued`) run has nothing active to lose; planAdvance decides nothing about it.
  const guarded = plan.guarded;
  if (!guarded) return null;
  const claimed = sql`(SELECT state_token FROM dag_runs WHERE id = ${run.id}) = ${token}`;
  const byNode = new Map(nodes.map((n) => [n.nodeId, n]));
  const moves = JSON.stringify(outcomes.flatMap((o) => (o.action.kind === "move" ? [{ id: byNode.get(o.nodeId)!.id, clusterId: o.action.to }] : [])));
  const lostOnes = outcomes.filter((o) => o.action.kind !== "move");
  const changes = lostOnes.map((o) => ({
    id: byNode.get(o.nodeId)!.id,
    attempt: o.attempt,
    final: o.action.kind === "fail",
    clusterId: o.action.kind === "retry" ? o.action.to : o.clusterId,
    lost: JSON.stringify({ attempt: o.attempt, clusterId: o.clusterId, since: o.since, at: now } satisfies LostAttempt),
    message: o.message,
  }));
  const cancels = lostOnes.map((o) => {
    const row = byNode.get(o.nodeId)!;
    const message: WorkCancel = { type: "cancel", runId: run.id, nodeRunId: row.id, nodeId: o.nodeId, attempt: o.attempt };
    return { msgId: workMsgId(row.id, o.attempt, "cancel"), subject: workSubject(o.clusterId, "cancel"), payload: JSON.stringify(message) };
  });
  const json = JSON.stringify(changes);
  return {
    outcomes,
    writes: [
      guarded.claim,
      // The lost attempt's end, before the decision: a dispatched retry then starts afresh from it.
      db.run(sql`
        UPDATE node_runs SET
          status = 'failed',
          final_failure = json_extract(j.value, '$.final'),
          cluster_id = json_extract(j.value, '$.clusterId'),
          lost_attempts = json_insert(COALESCE(lost_attempts, '[]'), '$[#]', json(json_extract(j.value, '$.lost'))),
          failed_partitions = NULL,
          message = json_extract(j.value, '$.message'),
          finished_at = ${now},
          updated_at = ${now}
        FROM json_each(${json}) AS j
        WHERE node_runs.id = json_extract(j.value, '$.id') AND node_runs.attempt = json_extract(j.value, '$.attempt') AND ${claimed}`),
      // Pending nodes follow to the cluster a retry takes (before the decision: it may dispatch them).
      db.run(sql`
        UPDATE node_runs SET cluster_id = json_extract(j.value, '$.clusterId'), updated_at = ${now}
        FROM json_each(${moves}) AS j
        WHERE node_runs.id = json_extract(j.value, '$.id') AND node_runs.status = 'pending' AND ${claimed}`),
      ...guarded.writes,
      // A new attempt starts with no message; this one says why it runs where it does.
      db.run(sql`
        UPDATE node_runs SET message = json_extract(j.value, '$.message')
        FROM json_each(${json}) AS j
        WHERE node_runs.id = json_extract(j.value, '$.id') AND node_runs.attempt = json_extract(j.value, '$.attempt') + 1 AND ${claimed}`),
      ...outboxInserts(db, cancels, now, claimed),
      db.run(sql`
        INSERT INTO events (workspace_id, run_id, node_id, type, data, at)
        SELECT ${run.workspaceId}, ${run.id}, json_extract(value, '$.id'), CASE WHEN json_extract(value, '$.lost') IS NULL THEN 'node.moved' ELSE 'node.lost' END, value, ${now}
        FROM json_each(${JSON.stringify([...changes, ...JSON.parse(moves)])}) WHERE ${claimed}`),
    ],
  };
}

/** The node rows as the outcomes leave them, for the scheduler's decision on that state. */
function after(nodes: NodeRow[], outcomes: LostOutcome[], now: number): NodeRow[] {
  const of = new Map(outcomes.map((o) => [o.nodeId, o]));
  return nodes.map((n) => {
    const o = of.get(n.nodeId);
    if (!o) return n;
    if (o.action.kind === "move") return { ...n, clusterId: o.action.to };
    const lost: LostAttempt = { attempt: o.attempt, clusterId: o.clusterId, since: o.since, at: now };
    return {
      ...n,
      status: "failed",
      finalFailure: o.action.kind === "fail",
      clusterId: o.action.kind === "retry" ? o.action.to : n.clusterId,
      lostAttempts: [...(n.lostAttempts ?? []), lost],
      failedPartitions: null,
      message: o.message,
      finishedAt: now,
    };
  });
}
