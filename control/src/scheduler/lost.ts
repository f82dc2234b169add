/**
 * @module
 * Lost clusters: what becomes of a node whose attempt runs on a cluster that stopped heartbeating.
 * Pure, like `decide`; `runs/lost.ts` reads the rows, calls `decideLost` on the Cron Trigger's
 * tick and writes the outcome together with the scheduler's next decision.
 *
 * Rules, for each node of a run whose status is active (`dispatched`, `building`, `running`):
 * 1. Its cluster is *silent* since the later of its last heartbeat (or, never heartbeating, its
 *    registration) and the node's last change (its dispatch or latest event): an attempt sent
 *    to a cluster that was already quiet gets the whole grace too.
 * 2. The attempt is *lost* once the silence lasts `grace` (the DAG's `onClusterLost.grace`, 10 min
 *    by default) — and never before the cluster counts as offline (`offlineAfterMs`), whatever a
 *    shorter grace says. A node on a cluster heard from within that time is never touched.
 * 3. `wait`: nothing happens, ever (a forced cancel ends such a run).
 * 4. `fail`: the attempt is marked lost and the node fails for good, its message naming the
 *    cluster and since when it is silent; the run then fails as for any node failed for good.
 * 5. `retryElsewhere`: the attempt is marked lost and the next attempt goes to another cluster
 *    matching the node's label selector whose agent is online now (not the lost one) — the first
 *    by name, as at submit. A lost attempt does not count against `retries` (losing a cluster is
 *    not the step's fault). A node that names its cluster, or has none (the workspace's only
 *    cluster), or whose selector matches no other online cluster, fails as in 4, saying so.
 *    While the run is being cancelled or is over nothing is retried: the attempt fails as in 4.
 * 6. With `retryElsewhere`, a node of the run not dispatched yet (`pending`) that was placed on the
 *    lost cluster by its selector is moved (`move`) to the cluster a retry would take: placement is
 *    decided at submit, and it would otherwise be sent to the lost cluster later, to wait out the
 *    grace again. Nothing is lost, nothing is cancelled.
 * For every lost attempt the lost cluster's agent is sent `cancel` for it (by the caller), so if it
 * comes back it stops it; its late events are answered and ignored (another attempt or an ended one).
 *
 * Applying the outcome (the node `failed`, or `dispatched` on an online cluster with a fresh
 * `updatedAt`) leaves nothing for `decideLost` to do: it is idempotent.
 */
import { clusterLostPolicy, type Dag } from "../../../proto/dag";
import { isActiveNode, type NodeStatus, type RunStatus } from "../../../proto/status";
import { type PlacementCluster, pickCluster } from "./placement";

export interface LostCluster {
  id: string;
  name: string;
  labels: Record<string, string>;
  lastHeartbeatAt: number | null;
  registeredAt: number | null;
}

export interface LostNode {
  nodeId: string;
  status: NodeStatus;
  attempt: number;
  clusterId: string | null;
  /** When the node last changed (dispatched, or moved by its agent's event). */
  updatedAt: number;
}

export interface LostInput {
  dag: Pick<Dag, "nodes" | "onClusterLost">;
  runStatus: RunStatus;
  nodes: LostNode[];
  /** The workspace's clusters. */
  clusters: LostCluster[];
  now: number;
  /** A cluster with no heartbeat for longer is offline (`OFFLINE_AFTER_MS`). */
  offlineAfterMs: number;
  /**
   * The same clusters as submit's placement sees them (status, allocatable, running Jobs): when
   * given, the cluster for a retry or move is chosen as at submit (`pickCluster`: most free
   * capacity, GPU nodes only where GPUs are allocatable); without, the first online match by name.
   */
  placement?: PlacementCluster[];
}

export interface LostOutcome {
  nodeId: string;
  /** The lost attempt and the cluster it ran on. */
  attempt: number;
  clusterId: string;
  /** The cluster's last heartbeat (null: it never sent one). */
  since: number | null;
  /** `retry`: the next attempt goes to `to`; `fail`: the node fails for good; `move`: a pending node will run on `to`. */
  action: { kind: "retry" | "move"; to: string; toName: string } | { kind: "fail" };
  /** Says what happened, for the node's message. */
  message: string;
}

export function decideLost(input: LostInput): LostOutcome[] {
  const { dag, now, offlineAfterMs } = input;
  const policy = clusterLostPolicy(dag);
  if (policy.policy === "wait") return [];
  const graceMs = Math.max(policy.graceMs, offlineAfterMs);
  const clusters = new Map(input.clusters.map((c) => [c.id, c]));
  const specs = new Map(dag.nodes.map((n) => [n.id, n]));
  const online = (c: LostCluster) => c.lastHeartbeatAt !== null && now - c.lastHeartbeatAt <= offlineAfterMs;
  const out: LostOutcome[] = [];
  for (const node of input.nodes) {
    const pending = node.status === "pending";
    if (!(isActiveNode(node.status) || (pending && policy.policy === "retryElsewhere")) || node.clusterId === null) continue;
    const cluster = clusters.get(node.clusterId);
    const heard = cluster?.lastHeartbeatAt ?? cluster?.registeredAt ?? null;
    // A pending node's last change is its run's submit, which says nothing of its cluster.
    if (now - Math.max(heard ?? 0, pending ? 0 : node.updatedAt) < graceMs) continue;
    if (cluster && online(cluster)) continue;
    const name = cluster?.name ?? node.clusterId;
    const since = cluster?.lastHeartbeatAt ?? null;
    const silent = since === null ? "it never sent a heartbeat" : `no heartbeat since ${new Date(since).toISOString()}`;
    const base = { nodeId: node.nodeId, attempt: node.attempt, clusterId: node.clusterId, since };
    const selector = specs.get(node.nodeId)?.cluster;
    const target =
      typeof selector === "object" && input.runStatus === "running"
        ? input.placement
          ? placedElsewhere(input.placement, clusters, node.clusterId, selector, specs.get(node.nodeId)?.resources)
          : elsewhere(input.clusters, node.clusterId, selector, online)
        : undefined;
    if (pending) {
      if (target) out.push({ ...base, action: { kind: "move", to: target.id, toName: target.name }, message: `cluster "${name}" lost (${silent}): placed on cluster "${target.name}"` });
      continue;
    }
    const lost = `cluster "${name}" lost (${silent}; onClusterLost ${policy.policy} after ${policy.grace}): attempt ${node.attempt} abandoned`;
    let why: string;
    if (policy.policy === "fail") {
      out.push({ ...base, action: { kind: "fail" }, message: lost });
      continue;
    }
    if (input.runStatus !== "running") why = `not retried: the run is ${input.runStatus}`;
    else if (selector === undefined) why = "nowhere else to retry: the node names no cluster (the workspace's only one)";
    else if (typeof selector === "string") why = `nowhere else to retry: the node names cluster "${selector}"`;
    else if (!target) why = `no other online cluster has the labels ${JSON.stringify(selector)}`;
    else {
      out.push({ ...base, action: { kind: "retry", to: target.id, toName: target.name }, message: `${lost}; retried on cluster "${target.name}" as attempt ${node.attempt + 1}` });
      continue;
    }
    out.push({ ...base, action: { kind: "fail" }, message: `${lost}; ${why}` });
  }
  return out;
}

/** Another online cluster with the selector's labels: the first by name, as placement at submit picks. */
function elsewhere(clusters: LostCluster[], lost: string, selector: Record<string, string>, online: (c: LostCluster) => boolean): LostCluster | undefined {
  return clusters.filter((c) => c.id !== lost && online(c) && Object.entries(selector).every(([k, v]) => c.labels[k] === v)).sort((a, b) => a.name.localeCompare(b.name))[0];
}

/** Another cluster for the node as submit's placement would pick it, the lost one left out. */
function placedElsewhere(
  placement: PlacementCluster[],
  clusters: Map<string, LostCluster>,
  lost: string,
  selector: Record<string, string>,
  resources: Dag["nodes"][number]["resources"],
): LostCluster | undefined {
  const picked = pickCluster(
    selector,
    resources,
    placement.filter((c) => c.id !== lost),
  );
  return picked.ok ? clusters.get(picked.clusterId) : undefined;
}
