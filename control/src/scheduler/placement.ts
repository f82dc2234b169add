/**
 * @module
 * Where a node with a label selector runs: a pure choice among the workspace's clusters, from
 * what their agents' heartbeats say. No I/O; `runs/placement.ts` feeds it the cluster rows.
 *
 * Rules, in this order:
 * 1. Only clusters having every label of the selector (exact values) are candidates.
 * 2. Only online ones (a heartbeat within the offline limit) are eligible: work for an agent that
 *    is gone would wait in NATS for as long as it stays gone.
 * 3. A node asking for GPUs (`resources.gpu` ≥ 1, i.e. `nvidia.com/gpu`) goes only where the
 *    heartbeat reports at least that many allocatable `nvidia.com/gpu` — a cluster that reported
 *    none (or nothing yet) has none as far as we know.
 * 4. A cluster whose whole allocatable CPU or memory is below one pod's request cannot run it.
 * 5. Among the rest, the most free capacity wins. Heartbeats carry the cluster's allocatable
 *    resources and its running Jobs, not each pod's requests, so the estimate is the share of the
 *    cluster's allocatable resources one more Job would get: allocatable / (running Jobs + 1) —
 *    of GPUs for a GPU node, of CPU otherwise (then memory). A cluster that has not reported its
 *    resources yet comes after every one that has. Ties go to the first name (deterministic).
 * When nothing is eligible, the problem says which rule left no cluster, naming the clusters.
 */
import type { Resources } from "../../../proto/dag";

/** What placement needs to know about one cluster. */
export interface PlacementCluster {
  id: string;
  name: string;
  labels: Record<string, string>;
  /** As `GET /v1/clusters` shows it: online means a heartbeat within the offline limit (45 s). */
  status: "online" | "offline" | "awaiting_agent";
  /** From the last heartbeat: allocatable CPU (cores) and memory (bytes) as quantities, and GPUs; null when not reported. */
  allocatable: { cpu: string; memory: string; gpu: number } | null;
  /** Jobs running there, from the last heartbeat (0 when not reported). */
  runningJobs: number;
}

export type Pick = { ok: true; clusterId: string } | { ok: false; message: string };

const SCALE: Record<string, number> = { m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };

/**
 * A Kubernetes quantity in base units (`500m` → 0.5, `4Gi` → 4·2³⁰); NaN when it is not one.
 * (The agent has its own in agent/…/capacity.ts: the control plane never imports the agent.)
 */
export function parseQuantity(q: string | number | undefined): number {
  if (q === undefined) return 0;
  if (typeof q === "number") return q;
  const m = /^([0-9.]+(?:[eE][-+]?\d+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/.exec(q.trim());
  if (!m) return Number.NaN;
  return Number(m[1]) * (m[2] ? SCALE[m[2]]! : 1);
}

/** What one pod of the node asks for, in base units (0 when not given). */
export function requestOf(r: Resources | undefined): { cpu: number; memory: number; gpu: number } {
  return { cpu: parseQuantity(r?.cpu), memory: parseQuantity(r?.memory), gpu: r?.gpu ?? 0 };
}

export const matchesLabels = (selector: Record<string, string>, labels: Record<string, string>): boolean => Object.entries(selector).every(([k, v]) => labels[k] === v);

/** Free capacity estimate (rule 5): higher is better; -1 when the cluster reported nothing. */
export function freeShare(c: PlacementCluster, gpuNode: boolean): [number, number] {
  if (!c.allocatable) return [-1, -1];
  const jobs = Math.max(0, c.runningJobs) + 1;
  const cpu = parseQuantity(c.allocatable.cpu);
  const memory = parseQuantity(c.allocatable.memory);
  const first = gpuNode ? c.allocatable.gpu / jobs : cpu / jobs;
  const second = gpuNode ? cpu / jobs : memory / jobs;
  return [Number.isFinite(first) ? first : 0, Number.isFinite(second) ? second : 0];
}

/** The cluster for a node selecting by `selector` and asking for `resources` (rules above). */
export function pickCluster(selector: Record<string, string>, resources: Resources | undefined, clusters: readonly PlacementCluster[]): Pick {
  const labels = JSON.stringify(selector);
  const byName = [...clusters].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const matching = byName.filter((c) => matchesLabels(selector, c.labels));
  if (matching.length === 0) return { ok: false, message: `no cluster has the labels ${labels}` };
  const online = matching.filter((c) => c.status === "online");
  if (online.length === 0) {
    const why = matching.map((c) => `${c.name}: ${c.status === "offline" ? "offline" : "no agent registered yet"}`).join(", ");
    return { ok: false, message: `no cluster with the labels ${labels} is online (${why})` };
  }
  const want = requestOf(resources);
  let eligible = online;
  if (want.gpu > 0) {
    eligible = eligible.filter((c) => (c.allocatable?.gpu ?? 0) >= want.gpu);
    if (eligible.length === 0) {
      const have = online.map((c) => `${c.name}: ${c.allocatable?.gpu ?? 0}`).join(", ");
      return {
        ok: false,
        message: `the node asks for ${want.gpu} GPU${want.gpu === 1 ? "" : "s"} (nvidia.com/gpu) and no online cluster with the labels ${labels} has that many allocatable (${have})`,
      };
    }
  }
  const fits = eligible.filter(
    (c) => !c.allocatable || ((want.cpu === 0 || parseQuantity(c.allocatable.cpu) >= want.cpu) && (want.memory === 0 || parseQuantity(c.allocatable.memory) >= want.memory)),
  );
  if (fits.length === 0) {
    const have = eligible.map((c) => `${c.name}: cpu ${c.allocatable?.cpu}, memory ${c.allocatable?.memory}`).join("; ");
    return {
      ok: false,
      message: `the node asks for cpu ${resources?.cpu ?? 0}, memory ${resources?.memory ?? 0} per pod, more than any online cluster with the labels ${labels} has allocatable (${have})`,
    };
  }
  const gpuNode = want.gpu > 0;
  let best = fits[0]!;
  let bestScore = freeShare(best, gpuNode);
  for (const c of fits.slice(1)) {
    const s = freeShare(c, gpuNode);
    // Strictly better only: among equals the first by name stays.
    if (s[0] > bestScore[0] || (s[0] === bestScore[0] && s[1] > bestScore[1])) {
      best = c;
      bestScore = s;
    }
  }
  return { ok: true, clusterId: best.id };
}
