/**
 * The harness cluster's fake nodes. kwok manages every Node carrying the annotation
 * `kwok.x-k8s.io/node: fake`: its stage `node-initialize` (stages.yaml) makes it Ready and keeps
 * the allocatable and capacity given here. Nothing else touches nodes — no kubelet, no
 * node-lifecycle-controller — so labels and taints stay exactly as created.
 */

export interface KwokTaint {
  key: string;
  value?: string;
  effect: "NoSchedule" | "PreferNoSchedule" | "NoExecute";
}

export interface KwokNodeSpec {
  name: string;
  labels?: Record<string, string>;
  taints?: KwokTaint[];
  /** Allocatable (= capacity), e.g. `{ cpu: "16", memory: "64Gi", pods: "110", "nvidia.com/gpu": "4" }`. */
  allocatable: Record<string, string>;
}

/** Label every default node carries with its pool: `cpu` or `gpu`. */
export const POOL_LABEL = "parallels.test/pool";
export const GPU_RESOURCE = "nvidia.com/gpu";
/** The GPU node's taint: only pods tolerating it (`nvidia.com/gpu` Exists or = present, NoSchedule) land there. */
export const GPU_TAINT: KwokTaint = { key: GPU_RESOURCE, value: "present", effect: "NoSchedule" };

/** Two CPU nodes and one GPU node with 4 GPUs, tainted. */
export const DEFAULT_NODES: readonly KwokNodeSpec[] = [
  { name: "kwok-cpu-0", labels: { [POOL_LABEL]: "cpu" }, allocatable: { cpu: "16", memory: "64Gi", pods: "110" } },
  { name: "kwok-cpu-1", labels: { [POOL_LABEL]: "cpu" }, allocatable: { cpu: "16", memory: "64Gi", pods: "110" } },
  {
    name: "kwok-gpu-0",
    labels: { [POOL_LABEL]: "gpu", "nvidia.com/gpu.present": "true" },
    taints: [GPU_TAINT],
    allocatable: { cpu: "32", memory: "128Gi", pods: "110", [GPU_RESOURCE]: "4" },
  },
];

/** The Node object to create (its status is kept on create; kwok's stage then adds conditions). */
export function nodeManifest(spec: KwokNodeSpec): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name: spec.name,
      // ttl 0: no node TTL controller runs; the annotation only silences clients that look for it.
      annotations: { "kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0" },
      labels: {
        "kubernetes.io/hostname": spec.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        type: "kwok",
        ...spec.labels,
      },
    },
    spec: { taints: spec.taints ?? [] },
    status: {
      addresses: [{ type: "InternalIP", address: "127.0.0.1" }],
      allocatable: spec.allocatable,
      capacity: spec.allocatable,
    },
  };
}

interface NodeObject {
  metadata?: { name?: string };
  spec?: { taints?: KwokTaint[] };
  status?: { conditions?: Array<{ type: string; status: string }>; allocatable?: Record<string, string> };
}

const taintKey = (t: KwokTaint) => `${t.key}=${t.value ?? ""}:${t.effect}`;

/**
 * What still keeps a node from being usable as specified: not Ready, a taint nobody asked for
 * (e.g. `node.kubernetes.io/not-ready`, which nothing would ever lift here), a missing taint, an
 * allocatable that differs. Empty when the node is as specified.
 */
export function nodeProblems(node: NodeObject | undefined, spec: KwokNodeSpec): string[] {
  if (!node) return [`node ${spec.name} does not exist`];
  const problems: string[] = [];
  const ready = node.status?.conditions?.find((c) => c.type === "Ready")?.status;
  if (ready !== "True") problems.push(`node ${spec.name} is not Ready (${ready ?? "no condition"})`);
  const have = (node.spec?.taints ?? []).map(taintKey).sort();
  const want = (spec.taints ?? []).map(taintKey).sort();
  if (have.join() !== want.join()) problems.push(`node ${spec.name} has taints [${have}], expected [${want}]`);
  for (const [resource, qty] of Object.entries(spec.allocatable)) {
    const got = node.status?.allocatable?.[resource];
    if (got !== qty) problems.push(`node ${spec.name} has allocatable ${resource}=${got ?? "none"}, expected ${qty}`);
  }
  return problems;
}
