/**
 * Which cluster runs each node: a node names a cluster, or selects one by labels, or (when it
 * says nothing) uses the workspace's only cluster. Decided once, at submit, so a run's messages
 * always go to the same agents.
 */
import type { clusters } from "../../../db/schema";
import type { Dag } from "../../../proto/dag";
import type { ProblemDetail } from "../../../proto/errors";
import { OFFLINE_AFTER_MS } from "../routes/clusters";

type ClusterRow = typeof clusters.$inferSelect;

export function placeNodes(dag: Dag, rows: ClusterRow[], now: number): { placement: Map<string, string>; problems: ProblemDetail[] } {
  const placement = new Map<string, string>();
  const problems: ProblemDetail[] = [];
  const names = rows.map((r) => r.name).sort();
  const online = (r: ClusterRow) => r.lastHeartbeatAt != null && now - r.lastHeartbeatAt <= OFFLINE_AFTER_MS;
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
    const matches = rows.filter((r) => Object.entries(sel).every(([k, v]) => r.labels[k] === v)).sort((a, b) => a.name.localeCompare(b.name));
    // Prefer a cluster whose agent is online; among equals, the first by name (deterministic).
    const chosen = matches.find(online) ?? matches[0];
    if (chosen) placement.set(node.id, chosen.id);
    else problems.push({ path, message: `no cluster has the labels ${JSON.stringify(sel)}` });
  });
  return { placement, problems };
}
