/**
 * Which cluster runs each node: a node names a cluster, or selects by labels (the pure
 * `scheduler/placement.ts` picks among the matching online clusters by free capacity, GPU nodes
 * only where GPUs are allocatable), or (when it says nothing) uses the workspace's only cluster.
 * Decided once, at submit, so a run's messages always go to the same agents. A node that cannot
 * be placed is a problem naming the node and why (the submit answers 422 and writes nothing).
 */
import type { clusters } from "../../../db/schema";
import type { Dag } from "../../../proto/dag";
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
    const picked = pickCluster(sel, node.resources, candidates);
    if (picked.ok) placement.set(node.id, picked.clusterId);
    else problems.push({ path, message: picked.message });
  });
  return { placement, problems };
}
