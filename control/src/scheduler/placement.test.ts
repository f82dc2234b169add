import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Resources } from "../../../proto/dag";
import { freeShare, matchesLabels, parseQuantity, pickCluster, requestOf, type PlacementCluster } from "./placement";

const cluster = (name: string, extra: Partial<PlacementCluster> = {}): PlacementCluster => ({
  id: `id-${name}`,
  name,
  labels: {},
  status: "online",
  allocatable: { cpu: "8", memory: "32Gi", gpu: 0 },
  runningJobs: 0,
  ...extra,
});

describe("pickCluster", () => {
  const eks = cluster("eks", { labels: { site: "cloud", gpu: "true" }, allocatable: { cpu: "64", memory: "256Gi", gpu: 4 } });
  const ezmeral = cluster("ezmeral", { labels: { site: "onprem" }, allocatable: { cpu: "32", memory: "128Gi", gpu: 0 } });

  it("picks the matching online cluster; says which rule left none", () => {
    expect(pickCluster({ site: "onprem" }, undefined, [eks, ezmeral])).toEqual({ ok: true, clusterId: "id-ezmeral" });
    expect(pickCluster({ gpu: "true" }, { gpu: 1 }, [eks, ezmeral])).toEqual({ ok: true, clusterId: "id-eks" });
    expect(pickCluster({ site: "mars" }, undefined, [eks, ezmeral])).toEqual({ ok: false, message: 'no cluster has the labels {"site":"mars"}' });
    expect(pickCluster({ site: "onprem" }, undefined, [eks, { ...ezmeral, status: "offline" }, cluster("lab", { labels: { site: "onprem" }, status: "awaiting_agent" })])).toEqual({
      ok: false,
      message: 'no cluster with the labels {"site":"onprem"} is online (ezmeral: offline, lab: no agent registered yet)',
    });
    expect(pickCluster({ site: "onprem" }, { gpu: 1 }, [eks, ezmeral])).toEqual({
      ok: false,
      message: 'the node asks for 1 GPU (nvidia.com/gpu) and no online cluster with the labels {"site":"onprem"} has that many allocatable (ezmeral: 0)',
    });
    expect(pickCluster({ gpu: "true" }, { gpu: 8 }, [eks, ezmeral])).toMatchObject({ ok: false, message: expect.stringContaining("asks for 8 GPUs (nvidia.com/gpu)") });
    expect(pickCluster({ site: "onprem" }, { cpu: "48", memory: "1Gi" }, [eks, ezmeral])).toEqual({
      ok: false,
      message: 'the node asks for cpu 48, memory 1Gi per pod, more than any online cluster with the labels {"site":"onprem"} has allocatable (ezmeral: cpu 32, memory 128Gi)',
    });
  });

  it("a GPU node never goes to a cluster that reported no GPUs, or nothing yet", () => {
    const unknown = cluster("a-new", { labels: { gpu: "true" }, allocatable: null });
    expect(pickCluster({ gpu: "true" }, { gpu: 1 }, [unknown, eks])).toEqual({ ok: true, clusterId: "id-eks" });
    expect(pickCluster({ gpu: "true" }, { gpu: 1 }, [unknown])).toMatchObject({ ok: false, message: expect.stringContaining("(a-new: 0)") });
    // A CPU node may go there, after the clusters that reported their resources.
    expect(pickCluster({ gpu: "true" }, undefined, [unknown, eks])).toEqual({ ok: true, clusterId: "id-eks" });
    expect(pickCluster({ gpu: "true" }, undefined, [unknown])).toEqual({ ok: true, clusterId: "id-a-new" });
  });

  it("prefers the most free capacity: allocatable shared by the running Jobs, GPUs for a GPU node; ties by name", () => {
    const big = cluster("big", { labels: { pool: "x" }, allocatable: { cpu: "64", memory: "64Gi", gpu: 2 }, runningJobs: 7 }); // 8 cores per Job
    const small = cluster("small", { labels: { pool: "x" }, allocatable: { cpu: "16", memory: "64Gi", gpu: 4 }, runningJobs: 0 }); // 16 cores per Job
    expect(pickCluster({ pool: "x" }, undefined, [big, small])).toEqual({ ok: true, clusterId: "id-small" });
    expect(pickCluster({ pool: "x" }, undefined, [{ ...big, runningJobs: 1 }, small])).toEqual({ ok: true, clusterId: "id-big" });
    // For a GPU node, GPUs per Job decide: 2/8 against 4/1.
    expect(pickCluster({ pool: "x" }, { gpu: 1 }, [big, small])).toEqual({ ok: true, clusterId: "id-small" });
    expect(pickCluster({ pool: "x" }, { gpu: 1 }, [{ ...big, runningJobs: 0, allocatable: { cpu: "64", memory: "64Gi", gpu: 8 } }, small])).toEqual({ ok: true, clusterId: "id-big" });
    const twin = { ...small, id: "id-another", name: "another" };
    expect(pickCluster({ pool: "x" }, undefined, [small, twin])).toEqual({ ok: true, clusterId: "id-another" });
  });

  it("parses quantities as Kubernetes does, and a node's request", () => {
    expect(parseQuantity("500m")).toBe(0.5);
    expect(parseQuantity("4Gi")).toBe(4 * 2 ** 30);
    expect(parseQuantity("1e3")).toBe(1000);
    expect(parseQuantity(2)).toBe(2);
    expect(parseQuantity("lots")).toBeNaN();
    expect(requestOf({ cpu: "250m", memory: "1Mi", gpu: 2 } as Resources)).toEqual({ cpu: 0.25, memory: 2 ** 20, gpu: 2 });
    expect(requestOf(undefined)).toEqual({ cpu: 0, memory: 0, gpu: 0 });
  });
});

// ── properties ────────────────────────────────────────────────────────────────────────────────
const LABELS = fc.dictionary(fc.constantFrom("gpu", "site", "zone"), fc.constantFrom("true", "false", "a"), { maxKeys: 3 });
const clusterArb = (name: string) =>
  fc.record({
    id: fc.constant(`id-${name}`),
    name: fc.constant(name),
    labels: LABELS,
    status: fc.constantFrom("online", "offline", "awaiting_agent"),
    allocatable: fc.option(
      fc.record({
        cpu: fc.oneof(
          fc.integer({ min: 0, max: 128 }).map(String),
          fc.integer({ min: 0, max: 8000 }).map((m) => `${m}m`),
        ),
        memory: fc.integer({ min: 0, max: 512 }).map((g) => `${g}Gi`),
        gpu: fc.integer({ min: 0, max: 8 }),
      }),
      { nil: null },
    ),
    runningJobs: fc.integer({ min: 0, max: 20 }),
  }) as fc.Arbitrary<PlacementCluster>;
const clustersArb = fc.uniqueArray(fc.constantFrom("a", "b", "c", "d", "e", "f", "g"), { maxLength: 7 }).chain((names) => fc.tuple(...names.map(clusterArb)));
const selectorArb = fc.dictionary(fc.constantFrom("gpu", "site", "zone"), fc.constantFrom("true", "false", "a"), { minKeys: 1, maxKeys: 2 });
const resourcesArb = fc.option(
  fc.record({
    cpu: fc.option(fc.constantFrom("500m", "2", "16", "100"), { nil: undefined }),
    memory: fc.option(fc.constantFrom("1Gi", "64Gi", "1Ti"), { nil: undefined }),
    gpu: fc.option(fc.integer({ min: 0, max: 5 }), { nil: undefined }),
  }),
  { nil: undefined },
) as fc.Arbitrary<Resources | undefined>;

/** Whether `c` can take the node at all (rules 1–4), stated independently of the implementation. */
function eligible(c: PlacementCluster, selector: Record<string, string>, r: Resources | undefined): boolean {
  if (!Object.entries(selector).every(([k, v]) => c.labels[k] === v) || c.status !== "online") return false;
  const gpu = r?.gpu ?? 0;
  if (gpu > 0 && (c.allocatable?.gpu ?? 0) < gpu) return false;
  if (!c.allocatable) return true;
  return parseQuantity(c.allocatable.cpu) >= parseQuantity(r?.cpu) && parseQuantity(c.allocatable.memory) >= parseQuantity(r?.memory);
}

describe("pickCluster (properties)", () => {
  it("never picks an offline, non-matching, GPU-less (for a GPU node) or too small cluster; picks one whenever one can take the node", () => {
    fc.assert(
      fc.property(clustersArb, selectorArb, resourcesArb, (clusters, selector, r) => {
        const pick = pickCluster(selector, r, clusters);
        const can = clusters.filter((c) => eligible(c, selector, r));
        expect(pick.ok).toBe(can.length > 0);
        if (!pick.ok) return;
        const chosen = clusters.find((c) => c.id === pick.clusterId)!;
        expect(chosen.status).toBe("online");
        expect(matchesLabels(selector, chosen.labels)).toBe(true);
        if ((r?.gpu ?? 0) > 0) expect(chosen.allocatable?.gpu ?? 0).toBeGreaterThanOrEqual(r!.gpu!);
        expect(can).toContain(chosen);
      }),
      { numRuns: 500 },
    );
  });

  it("picks the eligible cluster with the most free capacity, the first by name among equals, whatever the order given", () => {
    fc.assert(
      fc.property(clustersArb, selectorArb, resourcesArb, fc.infiniteStream(fc.nat()), (clusters, selector, r, seeds) => {
        const pick = pickCluster(selector, r, clusters);
        if (!pick.ok) return;
        const gpuNode = (r?.gpu ?? 0) > 0;
        const chosen = clusters.find((c) => c.id === pick.clusterId)!;
        const [a0, a1] = freeShare(chosen, gpuNode);
        for (const other of clusters.filter((c) => eligible(c, selector, r))) {
          const [b0, b1] = freeShare(other, gpuNode);
          const better = b0 > a0 || (b0 === a0 && b1 > a1);
          expect(better, `${other.name} has more free capacity than ${chosen.name}`).toBe(false);
          if (b0 === a0 && b1 === a1) expect(chosen.name <= other.name).toBe(true);
        }
        // The answer does not depend on the order of the rows.
        const it = seeds[Symbol.iterator]();
        const shuffled = [...clusters].sort(() => (it.next().value % 3) - 1);
        expect(pickCluster(selector, r, shuffled)).toEqual(pick);
      }),
      { numRuns: 500 },
    );
  });

  it("says why when it picks nothing: the labels, the status, or the GPUs", () => {
    fc.assert(
      fc.property(clustersArb, selectorArb, resourcesArb, (clusters, selector, r) => {
        const pick = pickCluster(selector, r, clusters);
        if (pick.ok) return;
        const matching = clusters.filter((c) => matchesLabels(selector, c.labels));
        if (matching.length === 0) expect(pick.message).toBe(`no cluster has the labels ${JSON.stringify(selector)}`);
        else if (!matching.some((c) => c.status === "online")) expect(pick.message).toMatch(/ is online \(/);
        else if ((r?.gpu ?? 0) > 0 && !matching.some((c) => c.status === "online" && (c.allocatable?.gpu ?? 0) >= r!.gpu!)) expect(pick.message).toMatch(/GPUs? \(nvidia\.com\/gpu\)/);
        else expect(pick.message).toMatch(/more than any online cluster/);
      }),
      { numRuns: 500 },
    );
  });
});
