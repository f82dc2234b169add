import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { validateDag } from "./index";
import { acyclicDagArb, type GeneratedDag } from "./testing";

/** Adds `start` depending on `end` (via after or an input); returns the new document. */
function withBackEdge(doc: GeneratedDag["doc"], start: string, end: string, viaInput: boolean): GeneratedDag["doc"] {
  const nodes = doc.nodes.map((n) => {
    if (n.id !== start) return n;
    return viaInput ? { ...n, inputs: { ...(n.inputs ?? {}), back_edge: { node: end } } } : { ...n, after: [...(n.after ?? []), end] };
  });
  return { ...doc, nodes };
}

describe("validateDag properties", () => {
  it("accepts every generated acyclic DAG", () => {
    fc.assert(
      fc.property(acyclicDagArb({ maxNodes: 300, maxRetries: 10 }), ({ doc }) => {
        const r = validateDag(doc);
        expect(r.ok ? [] : r.problems).toEqual([]);
      }),
      { numRuns: 100 },
    );
  });

  it("reports a back edge as exactly one cycle naming the nodes on it in order", () => {
    const arb = acyclicDagArb({ minNodes: 2, maxNodes: 200 }).chain((g) =>
      fc.record({ g: fc.constant(g), startPick: fc.nat(), walk: fc.array(fc.nat(), { minLength: 1, maxLength: 20 }), viaInput: fc.boolean() }),
    );
    fc.assert(
      fc.property(arb, ({ g, startPick, walk, viaInput }) => {
        const down = new Map<string, string[]>();
        for (const [from, to] of g.edges) down.set(from, [...(down.get(from) ?? []), to]);
        const starts = g.ids.filter((id) => down.has(id));
        fc.pre(starts.length > 0);
        // Walk downstream from `start` to `end`: then `start` depending on `end` closes a cycle.
        const start = starts[startPick % starts.length]!;
        let end = start;
        for (const step of walk) {
          const next = down.get(end);
          if (!next) break;
          end = next[step % next.length]!;
        }
        const doc = withBackEdge(g.doc, start, end, viaInput);
        const r = validateDag(doc);
        expect(r.ok).toBe(false);
        if (r.ok) return;
        expect(r.problems).toHaveLength(1);
        const [problem] = r.problems;
        expect(problem!.message).toMatch(/^cycle: /);
        const names = problem!.message.slice("cycle: ".length).split(" → ");
        expect(names[0]).toBe(names.at(-1));
        // The path points at the first node on the cycle.
        expect(problem!.path).toBe(`nodes[${doc.nodes.findIndex((n) => n.id === names[0])}]`);
        // Every step is an edge of the graph with the back edge (end → start) added.
        const edgeSet = new Set([...g.edges.map(([a, b]) => `${a} ${b}`), `${end} ${start}`]);
        for (let i = 0; i + 1 < names.length; i++) expect(edgeSet.has(`${names[i]} ${names[i + 1]}`)).toBe(true);
        // Every cycle goes through the back edge.
        expect(names).toContain(start);
        expect(names).toContain(end);
        expect(new Set(names).size).toBe(names.length - 1);
      }),
      { numRuns: 200 },
    );
  });
});
