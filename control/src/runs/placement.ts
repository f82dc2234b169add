/**
 * Which cluster runs each node: a node names a cluster, or selects by labels (the pure
 * `scheduler/placement.ts` picks among the matching online clusters by free capacity, GPU nodes
 * only where GPUs are allocatable), or (when it says nothing) uses the workspace's only cluster.
 * Decided once, at submit, so a run's messages always go to the same agents. A node that cannot
 * be placed is a problem naming the node and why (the submit answers 422 and writes nothing).
 *
 * The run's own nodes count against each other: a heartbeat knows only the Jobs running now, so
 * each node already placed that can run at the same time as the next one (neither upstream of
 * the other) counts as one more running Job on its cluster. Two independent GPU steps of one run
 * thus spread over two equal clusters instead of queueing on the first by name; a chain
 * (`prepare → train → report`) never competes with itself.
 */
import type { clusters } from "../../../db/schema";
import { concurrency, type Dag, graphOf } from "../../../proto/dag";
import type { ProblemDetail } from "../../../proto/errors";
import { clusterView } from "../routes/clusters";
import { pickCluster, type PlacementCluster } from "../scheduler/placement";

type ClusterRow = typeof clusters.$inferSelect;

/** A cluster row as placement sees it: its status now and what its last heartbeat reported. */
export function placementCluster(row: ClusterRow, now: number): PlacementCluster {
  const info = (row.agentInfo ?? {}) as { allocatable?: PlacementCluster["allocatable"]; runningJobs?: number };
  return {
    id: row.id,
    name: row.name,
    labels: row.labels,
    status: clusterView(row, now).status,
    allocatable: info.allocatable ?? null,
    runningJobs: typeof info.runningJobs === "number" ? info.runningJobs : 0,
  };
}

export function placeNodes(dag: Dag, rows: ClusterRow[], now: number): { placement: Map<string, string>; problems: ProblemDetail[] } {
  const placement = new Map<string, string>();
  const problems: ProblemDetail[] = [];
  const names = rows.map((r) => r.name).sort();
  let candidates: PlacementCluster[] | undefined; // made on the first selector only
  let concurrent: ((i: number, j: number) => boolean) | undefined;
  /** Clusters as the node at `i` sees them: their running Jobs plus this run's nodes placed there that run beside it. */
  const withThisRun = (i: number, clusters: PlacementCluster[]): PlacementCluster[] => {
    concurrent ??= concurrency(graphOf(dag));
    const extra = new Map<string, number>();
    dag.nodes.forEach((other, j) => {
      const at = placement.get(other.id);
      if (at !== undefined && concurrent!(i, j)) extra.set(at, (extra.get(at) ?? 0) + 1);
    });
    return extra.size === 0 ? clusters : clusters.map((c) => ({ ...c, runningJobs: c.runningJobs + (extra.get(c.id) ?? 0) }));
  };
  dag.nodes.forEach((node, i) => {
    const path = `nodes[${i}].cluster`;
    const sel = node.cluster;
    if (sel === undefined) {
      if (rows.length === 1) placement.set(node.id, rows[0]!.id);
      else if (rows.length === 0) problems.push({ path, message: "no cluster exists in this workspace; create one with POST /v1/clusters" });
      else problems.push({ path, message: `not set, and the workspace has ${rows.length} clusters (${names.join(", ")}); name one or select by labels` });
      return;
    }
    if (typeof sel === "string") {
      const row = rows.find((r) => r.name === sel);
      if (row) placement.set(node.id, row.id);
      else problems.push({ path, message: `no cluster named "${sel}" (clusters: ${names.join(", ") || "none"})` });
      return;
    }
    candidates ??= rows.map((r) => placementCluster(r, now));
    const picked = pickCluster(sel, node.resources, withThisRun(i, candidates));
    if (picked.ok) placement.set(node.id, picked.clusterId);
    else problems.push({ path, message: picked.message });
  });
  return { placement, problems };
}
