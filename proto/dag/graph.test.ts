import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DagCycleError, downstreamOf, findCycles, topologicalOrder, upstreamOf, validateDag, type Dag } from "./index";
import { acyclicDagArb } from "./testing";

const node = (id: string, deps: { inputs?: string[]; after?: string[] } = {}) => ({
  id,
  project: { uri: "." },
  ...(deps.inputs ? { inputs: Object.fromEntries(deps.inputs.map((d, i) => [`i${i}`, { node: d }])) } : {}),
  ...(deps.after ? { after: deps.after } : {}),
});
const dag = (...nodes: ReturnType<typeof node>[]) => ({ nodes }) as unknown as Dag;

describe("graph", () => {
  const diamond = dag(node("d", { inputs: ["b", "c"], after: ["b"] }), node("b", { inputs: ["a"] }), node("c", { after: ["a"] }), node("a", { inputs: [] }));

  it("derives upstream and downstream from inputs and after, deduplicated", () => {
    expect(upstreamOf(diamond)).toEqual(
      new Map([
        ["d", ["b", "c"]],
        ["b", ["a"]],
        ["c", ["a"]],
        ["a", []],
      ]),
    );
    expect(downstreamOf(diamond)).toEqual(
      new Map([
        ["d", []],
        ["b", ["d"]],
        ["c", ["d"]],
        ["a", ["b", "c"]],
      ]),
    );
  });

  it("ignores inputs that come from runs or URIs", () => {
    const g = dag({ id: "x", project: { uri: "." }, inputs: { r: { run: "abc" }, u: { uri: "s3://x" } } } as never);
    expect(upstreamOf(g)).toEqual(new Map([["x", []]]));
  });

  it("orders nodes topologically", () => {
    expect(topologicalOrder(diamond)).toEqual(["a", "b", "c", "d"]);
  });

  it("finds one cycle per strongly connected component and throws on sorting it", () => {
    const cyclic = dag(node("a", { after: ["c"] }), node("b", { after: ["a"] }), node("c", { after: ["b", "a"] }), node("s", { after: ["s"] }));
    expect(findCycles(cyclic)).toEqual([["a", "c"], ["s"]]);
    expect(() => topologicalOrder(cyclic)).toThrow(DagCycleError);
    expect(() => topologicalOrder(cyclic)).toThrow("the DAG has a cycle: a → c → a; s → s");
  });

  it("respects every edge in the topological order of generated DAGs", () => {
    fc.assert(
      fc.property(acyclicDagArb({ maxNodes: 200 }), ({ doc, edges }) => {
        const r = validateDag(doc);
        if (!r.ok) throw new Error(JSON.stringify(r.problems));
        const order = topologicalOrder(r.dag);
        expect(order.length).toBe(doc.nodes.length);
        const pos = new Map(order.map((id, i) => [id, i]));
        for (const [from, to] of edges) expect(pos.get(from)!).toBeLessThan(pos.get(to)!);
        expect(findCycles(r.dag)).toEqual([]);
      }),
      { numRuns: 100 },
    );
  });
});
