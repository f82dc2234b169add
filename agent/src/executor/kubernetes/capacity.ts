/**
 * What the cluster can hold, from its nodes (one list + watch of nodes, kept as a few fields):
 * the heartbeat's allocatable CPU, memory and GPUs, and how many pods of a node's size fit on
 * the nodes its pods may use (node selector, tolerated taints) — the cap on a Job's parallelism.
 */
import { z } from "zod";
import type { Resources, Toleration } from "../../../../proto/dag";

const Taint = z.object({ key: z.string(), value: z.string().optional(), effect: z.string() });
const RawNode = z.object({
  metadata: z.object({ name: z.string(), labels: z.record(z.string(), z.string()).default({}) }),
  spec: z.object({ unschedulable: z.boolean().optional(), taints: z.array(Taint).optional() }).default({}),
  status: z
    .object({
      allocatable: z.record(z.string(), z.string()).default({}),
      conditions: z.array(z.object({ type: z.string(), status: z.string() })).default([]),
    })
    .default({ allocatable: {}, conditions: [] }),
});

export interface ObservedNode {
  name: string;
  labels: Record<string, string>;
  taints: z.infer<typeof Taint>[];
  schedulable: boolean;
  cpu: number;
  memory: number;
  gpu: number;
  pods: number;
}

/** A Kubernetes quantity in base units (cores, bytes, count): `500m` → 0.5, `4Gi` → 4·2³⁰, `1e3` → 1000. */
export function parseQuantity(q: string | number | undefined): number {
  if (q === undefined) return 0;
  if (typeof q === "number") return q;
  const m = /^([0-9.]+(?:[eE][-+]?\d+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/.exec(q.trim());
  if (!m) return Number.NaN;
  const scale: Record<string, number> = { m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
  return Number(m[1]) * (m[2] ? scale[m[2]]! : 1);
}

export function observeNode(raw: unknown): ObservedNode | null {
  const parsed = RawNode.safeParse(raw);
  if (!parsed.success) return null;
  const { metadata, spec, status } = parsed.data;
  const ready = status.conditions.some((c) => c.type === "Ready" && c.status === "True");
  return {
    name: metadata.name,
    labels: metadata.labels,
    taints: spec.taints ?? [],
    schedulable: ready && spec.unschedulable !== true,
    cpu: parseQuantity(status.allocatable.cpu),
    memory: parseQuantity(status.allocatable.memory),
    gpu: parseQuantity(status.allocatable["nvidia.com/gpu"]),
    pods: parseQuantity(status.allocatable.pods),
  };
}

/** Kubernetes' toleration matching (`Exists` without a key tolerates everything). */
export function tolerates(tolerations: readonly Toleration[], taint: { key: string; value?: string | undefined; effect: string }): boolean {
  return tolerations.some(
    (t) => (t.effect === undefined || t.effect === taint.effect) && (t.key === undefined || t.key === taint.key) && (t.operator === "Exists" || (t.value ?? "") === (taint.value ?? "")),
  );
}

/** Allocatable resources of the schedulable nodes, for the heartbeat (`cpu`/`memory` as quantities). */
export function allocatableOf(nodes: Iterable<ObservedNode>): { cpu: string; memory: string; gpu: number } {
  let cpu = 0;
  let memory = 0;
  let gpu = 0;
  for (const n of nodes) {
    if (!n.schedulable) continue;
    cpu += n.cpu;
    memory += n.memory;
    gpu += n.gpu;
  }
  return { cpu: String(Math.round(cpu * 1000) / 1000), memory: `${Math.floor(memory / 2 ** 20)}Mi`, gpu };
}

/**
 * How many pods of this size the cluster's nodes can hold at once (allocatable, not what runs
 * there now): per usable node the fewest by CPU, memory, GPUs and its pod limit, summed.
 */
export function podsThatFit(nodes: Iterable<ObservedNode>, r: Resources | undefined, nodeSelector: Record<string, string>, tolerations: readonly Toleration[]): number {
  const cpu = parseQuantity(r?.cpu);
  const memory = parseQuantity(r?.memory);
  const gpu = r?.gpu ?? 0;
  let total = 0;
  for (const n of nodes) {
    if (!n.schedulable) continue;
    if (Object.entries(nodeSelector).some(([k, v]) => n.labels[k] !== v)) continue;
    if (n.taints.some((t) => (t.effect === "NoSchedule" || t.effect === "NoExecute") && !tolerates(tolerations, t))) continue;
    let fit = n.pods > 0 ? n.pods : Number.POSITIVE_INFINITY;
    if (cpu > 0) fit = Math.min(fit, Math.floor(n.cpu / cpu));
    if (memory > 0) fit = Math.min(fit, Math.floor(n.memory / memory));
    if (gpu > 0) fit = Math.min(fit, Math.floor(n.gpu / gpu));
    total += Number.isFinite(fit) ? fit : 0;
  }
  return total;
}
