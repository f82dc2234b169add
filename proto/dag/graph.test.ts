import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { concurrency, DagCycleError, downstreamOf, graphOf, findCycles, topologicalOrder, upstreamOf, validateDag, type Dag } from "./index";
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

  it("says two nodes can run at the same time exactly when no path joins them", () => {
    const c = concurrency(graphOf(diamond));
    const [d, b, cc, a] = [0, 1, 2, 3]; // the diamond's document order
    expect([c(a, b), c(b, cc), c(cc, b), c(a, d), c(b, d), c(a, a)]).toEqual([false, true, true, false, false, false]);
    fc.assert(
      fc.property(acyclicDagArb({ maxNodes: 40 }), ({ doc }) => {
        const r = validateDag(doc);
        if (!r.ok) throw new Error(JSON.stringify(r.problems));
        const g = graphOf(r.dag);
        const reaches = (from: number, to: number): boolean => {
          const seen = new Set<number>();
          const stack = [from];
          while (stack.length > 0) {
            const i = stack.pop()!;
            if (i === to) return true;
            for (const d of g.downstream[i]!)
              if (!seen.has(d)) {
                seen.add(d);
                stack.push(d);
              }
          }
          return false;
        };
        const concurrent = concurrency(g);
        for (let i = 0; i < g.ids.length; i++) for (let j = 0; j < g.ids.length; j++) expect(concurrent(i, j)).toBe(i !== j && !reaches(i, j) && !reaches(j, i));
      }),
      { numRuns: 50 },
    );
  });
});
