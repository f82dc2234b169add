/**
 * @module
 * `POST /v1/agent/cache`: a caching node's attempt asks, once its inputs are downloaded, whether a
 * node run with its key succeeded in the workspace. The agent computes the key (it alone sees the
 * project's commit or files and the input contents); which hit is acceptable is the pure
 * `acceptHit` (`proto/dag/cache.ts`: succeeded, within the node's `maxAge`).
 *
 * One D1 round trip: the key is stored on the asking node run (only while its attempt is the
 * current, unfinished one, and only for this cluster's work), its run's DAG and the newest
 * succeeded node run with the key in the same workspace are read. Asking twice (a redelivered
 * start, a retried request) stores the same key and answers the same: the agent then reports the
 * node `succeeded` with `cachedFrom`, and the node becomes `cached` (node-events.ts).
 */
import { sql } from "drizzle-orm";
import type { CacheLookup, CacheLookupAnswer } from "../../../proto/agent";
import { acceptHit, cachePolicy, effectiveCache, type Dag } from "../../../proto/dag";
import { ACTIVE_NODE_STATUSES } from "../../../proto/status";
import { sqlList, writeBatch, type Db } from "../db";
import { ApiError } from "../errors";

export async function lookupCache(db: Db, clusterId: string, ask: CacheLookup, now = Date.now()): Promise<CacheLookupAnswer> {
  // Raw statements in one D1 batch (writeBatch: drizzle's batch cannot bind raw SQL on D1).
  const [, foundResult, candidateResult] = await writeBatch(db, [
    db.run(sql`UPDATE node_runs SET cache_key = ${ask.key}, updated_at = ${now}
      WHERE id = ${ask.nodeRunId} AND cluster_id = ${clusterId} AND attempt = ${ask.attempt} AND status IN ${sqlList(ACTIVE_NODE_STATUSES)}`),
    db.run(sql`SELECT n.node_id, v.spec FROM node_runs n JOIN dag_runs r ON r.id = n.run_id
      JOIN dag_versions v ON v.dag_id = r.dag_id AND v.version = r.dag_version
      WHERE n.id = ${ask.nodeRunId} AND n.cluster_id = ${clusterId}`),
    // The newest first: if it is too old, so is every other.
    db.run(sql`SELECT n.id, n.run_id, n.mlflow_run_id, n.status, n.finished_at FROM node_runs n JOIN dag_runs r ON r.id = n.run_id
      WHERE n.cache_key = ${ask.key} AND n.status = 'succeeded' AND n.mlflow_run_id IS NOT NULL AND n.id != ${ask.nodeRunId}
        AND r.workspace_id = (SELECT r2.workspace_id FROM node_runs n2 JOIN dag_runs r2 ON r2.id = n2.run_id WHERE n2.id = ${ask.nodeRunId} AND n2.cluster_id = ${clusterId})
      ORDER BY n.finished_at DESC LIMIT 1`),
  ]);
  const found = (foundResult?.results ?? []) as { node_id: string; spec: string }[];
  const candidates = (candidateResult?.results ?? []) as { id: string; run_id: string; mlflow_run_id: string; status: string; finished_at: number | null }[];
  const own = found[0];
  // The same answer for "unknown" and "another cluster's", as for events.
  if (!own) throw new ApiError("forbidden", `node run "${ask.nodeRunId}" is not work of this cluster`, [{ path: "nodeRunId", message: "not work of this cluster" }]);
  const dag = JSON.parse(own.spec) as Dag;
  const node = dag.nodes.find((n) => n.id === own.node_id);
  const policy = node ? cachePolicy(effectiveCache(dag, node)) : null;
  const c = candidates[0];
  if (!c || !acceptHit({ status: c.status, finishedAt: c.finished_at }, policy, now)) return { hit: null };
  return { hit: { runId: c.run_id, nodeRunId: c.id, mlflowRunId: c.mlflow_run_id, finishedAt: new Date(c.finished_at!).toISOString() } };
}
