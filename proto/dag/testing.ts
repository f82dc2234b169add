/**
 * @module
 * fast-check arbitraries for DAG documents, shared by the tests of proto/dag and the scheduler.
 * Test-only: not exported from `index.ts`.
 */
import fc from "fast-check";
import type { DagInput } from "./schema";

/** A generated acyclic DAG plus what the generator knows about it. */
export interface GeneratedDag {
  doc: DagInput & { nodes: NonNullable<DagInput["nodes"]> };
  /** Node ids in creation order: every edge goes from an earlier to a later id. */
  ids: string[];
  /** Edges as [upstream, downstream] node ids (deduplicated). */
  edges: [string, string][];
}

export interface DagArbOptions {
  minNodes?: number;
  maxNodes?: number;
  /** Largest `retries` given to a node (default 0: no retries field). */
  maxRetries?: number;
}

const depArb = fc.record({
  from: fc.nat(),
  via: fc.constantFrom("input", "after", "both"),
  path: fc.option(fc.constantFrom("out", "model/weights", ""), { nil: undefined }),
});

const nodeExtrasArb = (maxRetries: number) =>
  fc.record({
    deps: fc.array(depArb, { maxLength: 4 }),
    externalInputs: fc.array(fc.oneof(fc.constant({ uri: "s3://bucket/data" }), fc.constant({ run: "0123abcd" })), {
      maxLength: 2,
    }),
    parallelism: fc.option(fc.integer({ min: 1, max: 100_000 }), { nil: undefined }),
    retries: maxRetries > 0 ? fc.integer({ min: 0, max: maxRetries }) : fc.constant(undefined),
    partition: fc.constantFrom("none", "object", "directory", "broadcast", "hash", "regex", undefined),
    sortKey: fc.double({ noNaN: true }),
  });

/**
 * Acyclic DAGs: nodes are created in order and every edge goes from an earlier node to a later
 * one (through `inputs`, `after` or both); the document then lists the nodes in a shuffled order.
 */
export function acyclicDagArb(options: DagArbOptions = {}): fc.Arbitrary<GeneratedDag> {
  const { minNodes = 1, maxNodes = 60, maxRetries = 0 } = options;
  return fc
    .record({
      prefix: fc.constantFrom("n", "step", "prep-x", "a1"),
      failurePolicy: fc.constantFrom("failFast", "continue", undefined),
      nodes: fc.array(nodeExtrasArb(maxRetries), { minLength: minNodes, maxLength: maxNodes }),
    })
    .map(({ prefix, failurePolicy, nodes }) => {
      const ids = nodes.map((_, i) => `${prefix}-${i}`);
      const edges = new Map<string, [string, string]>();
      const docNodes = nodes.map((extra, i) => {
        const id = ids[i]!;
        const inputs: Record<string, unknown> = {};
        const after: string[] = [];
        if (i > 0) {
          extra.deps.forEach((dep, k) => {
            const from = ids[dep.from % i]!;
            edges.set(`${from} ${id}`, [from, id]);
            if (dep.via !== "after") inputs[`in_${k}`] = dep.path === undefined ? { node: from } : { node: from, path: dep.path };
            if (dep.via !== "input") after.push(from);
          });
        }
        for (const [k, ref] of extra.externalInputs.entries()) inputs[`ext-${k}`] = ref;
        const names = Object.keys(inputs);
        const node: Record<string, unknown> = { id, project: { uri: "https://github.com/example/project.git" } };
        if (names.length > 0) node.inputs = inputs;
        if (after.length > 0) node.after = after;
        if (extra.parallelism !== undefined) node.parallelism = extra.parallelism;
        if (extra.retries !== undefined) node.retries = extra.retries;
        const input = names[0];
        if (extra.partition === "none") node.partition = { by: "none" };
        else if (extra.partition && input) {
          node.partition =
            extra.partition === "hash"
              ? { by: "hash", input, partitions: 8, key: { regex: "^([^/]+)/" } }
              : extra.partition === "regex"
                ? { by: "regex", input, pattern: "^(?<day>\\d{4}-\\d{2}-\\d{2})/", group: "day" }
                : { by: extra.partition, input };
        }
        return { node, sortKey: extra.sortKey };
      });
      const shuffled = [...docNodes].sort((a, b) => a.sortKey - b.sortKey).map((x) => x.node);
      const doc = { name: "generated", nodes: shuffled, ...(failurePolicy ? { failurePolicy } : {}) } as GeneratedDag["doc"];
      return { doc, ids, edges: [...edges.values()] };
    });
}

/** A chain `n-0 → n-1 → … → n-(count-1)` plus fan-out, for benchmarks: `count` nodes. */
export function wideDag(count: number): GeneratedDag["doc"] {
  const nodes = Array.from({ length: count }, (_, i) => {
    const node: Record<string, unknown> = { id: `n-${i}`, project: { uri: "https://github.com/example/p.git" } };
    if (i > 0) node.inputs = { prev: { node: `n-${Math.floor((i - 1) / 2)}` }, data: { uri: "s3://b/x" } };
    if (i > 2) node.after = [`n-${i - 2}`];
    if (i > 0) node.partition = { by: "object", input: "prev" };
    return node;
  });
  return { name: "wide", nodes } as GeneratedDag["doc"];
}
