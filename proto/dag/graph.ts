/**
 * @module
 * The dependency graph of a DAG. Edges run from an upstream node to the node that needs it:
 * `b.inputs.x = {node: "a"}` or `b.after = ["a"]` both give the edge `a → b`.
 *
 * Everything here is O(nodes + edges). References to ids that are not in the DAG are ignored
 * (`validateDag` reports them); when ids are duplicated, references resolve to the first node.
 */
import type { Dag, DagNode } from "./schema";

/** Thrown by `topologicalOrder` when the graph has a cycle (a validated DAG never does). */
export class DagCycleError extends Error {
  override name = "DagCycleError";
  constructor(
    /** Each cycle as node ids in edge order, without repeating the first. */
    readonly cycles: string[][],
    options?: ErrorOptions,
  ) {
    super(`the DAG has a cycle: ${cycles.map((c) => [...c, c[0]].join(" → ")).join("; ")}`, options);
  }
}

/** A DAG's graph by node index (document order), for callers that work on every event. */
export interface DagGraph {
  /** Node ids in document order. */
  ids: string[];
  /** Index of the first node with each id. */
  indexOf: Map<string, number>;
  /** Deduplicated upstream indices of each node (inputs first, then `after`, as written). */
  upstream: number[][];
  /** Downstream indices of each node, in document order. */
  downstream: number[][];
}

/** Upstream node ids of one node, deduplicated, as written (inputs first, then `after`). */
export function declaredUpstream(node: Pick<DagNode, "inputs" | "after">): string[] {
  const out: string[] = [];
  for (const ref of Object.values(node.inputs ?? {})) if ("node" in ref) out.push(ref.node);
  for (const id of node.after ?? []) out.push(id);
  return out.length > 1 ? [...new Set(out)] : out;
}

/** Builds the graph from ids and, per node, the ids it depends on. */
export function buildGraph(ids: readonly string[], deps: readonly (readonly string[])[]): DagGraph {
  const indexOf = new Map<string, number>();
  ids.forEach((id, i) => {
    if (!indexOf.has(id)) indexOf.set(id, i);
  });
  const upstream: number[][] = [];
  const downstream: number[][] = ids.map(() => []);
  for (let i = 0; i < ids.length; i++) {
    const up: number[] = [];
    const seen = new Set<number>();
    for (const dep of deps[i] ?? []) {
      const j = indexOf.get(dep);
      if (j === undefined || seen.has(j)) continue;
      seen.add(j);
      up.push(j);
      downstream[j]!.push(i);
    }
    upstream.push(up);
  }
  return { ids: [...ids], indexOf, upstream, downstream };
}

/** The graph of a DAG, by node index. */
export function graphOf(dag: Pick<Dag, "nodes">): DagGraph {
  return buildGraph(
    dag.nodes.map((n) => n.id),
    dag.nodes.map(declaredUpstream),
  );
}

function toIdMap(ids: string[], lists: number[][]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  ids.forEach((id, i) => {
    if (!out.has(id))
      out.set(
        id,
        lists[i]!.map((j) => ids[j]!),
      );
  });
  return out;
}

/** For each node id, the ids of the nodes it depends on (from `inputs[*].node` and `after`). */
export function upstreamOf(dag: Pick<Dag, "nodes">): Map<string, string[]> {
  const g = graphOf(dag);
  return toIdMap(g.ids, g.upstream);
}

/** For each node id, the ids of the nodes that depend on it, in document order. */
export function downstreamOf(dag: Pick<Dag, "nodes">): Map<string, string[]> {
  const g = graphOf(dag);
  return toIdMap(g.ids, g.downstream);
}

/**
 * Node indices such that every node comes after all its upstream nodes (Kahn's algorithm; ties
 * keep document order of the roots). Returns fewer than all nodes when there is a cycle.
 */
export function topologicalIndices(g: DagGraph): number[] {
  const n = g.ids.length;
  const pending = g.upstream.map((u) => u.length);
  const order: number[] = [];
  for (let i = 0; i < n; i++) if (pending[i] === 0) order.push(i);
  for (let head = 0; head < order.length; head++) {
    for (const d of g.downstream[order[head]!]!) {
      if (--pending[d]! === 0) order.push(d);
    }
  }
  return order;
}

/**
 * Whether two nodes can run at the same time: neither is upstream of the other, directly or
 * through others. `concurrent(i, j)` answers in O(1) after one O(nodes × edges) pass (sets of
 * ancestors by index; DAGs have tens or hundreds of nodes, not millions).
 */
export function concurrency(g: DagGraph): (i: number, j: number) => boolean {
  const ancestors: Set<number>[] = g.ids.map(() => new Set<number>());
  for (const i of topologicalIndices(g)) {
    for (const u of g.upstream[i]!) {
      ancestors[i]!.add(u);
      for (const a of ancestors[u]!) ancestors[i]!.add(a);
    }
  }
  return (i, j) => i !== j && !ancestors[i]!.has(j) && !ancestors[j]!.has(i);
}

/** Node ids in an order where every node comes after its upstream nodes. Throws `DagCycleError`. */
export function topologicalOrder(dag: Pick<Dag, "nodes">): string[] {
  const g = graphOf(dag);
  const order = topologicalIndices(g);
  if (order.length < g.ids.length) {
    throw new DagCycleError(cycleIndices(g).map((c) => c.map((i) => g.ids[i]!)));
  }
  return order.map((i) => g.ids[i]!);
}

/**
 * One cycle per strongly connected component that has one (so at most as many cycles as nodes,
 * never the exponential set of all elementary cycles): the shortest cycle through the
 * component's first node in document order, as node ids in edge order without repeating the
 * first. A node that depends on itself is a cycle of one. Fixing a reported cycle may reveal
 * another in the same component.
 */
export function findCycles(dag: Pick<Dag, "nodes">): string[][] {
  const g = graphOf(dag);
  return cycleIndices(g).map((c) => c.map((i) => g.ids[i]!));
}

/** `findCycles` by node index, sorted by the index of each cycle's first node. */
export function cycleIndices(g: DagGraph): number[][] {
  const comp = components(g);
  const cycles: number[][] = [];
  const reported = new Set<number>();
  for (let s = 0; s < g.ids.length; s++) {
    const c = comp[s]!;
    if (reported.has(c)) continue;
    if (g.upstream[s]!.includes(s)) {
      reported.add(c);
      cycles.push([s]);
      continue;
    }
    // Breadth-first search inside the component from s back to s.
    const parent = new Map<number, number>([[s, -1]]);
    const queue = [s];
    let closing = -1;
    for (let h = 0; h < queue.length && closing < 0; h++) {
      const v = queue[h]!;
      for (const d of g.downstream[v]!) {
        if (comp[d] !== c) continue;
        if (d === s) {
          closing = v;
          break;
        }
        if (!parent.has(d)) {
          parent.set(d, v);
          queue.push(d);
        }
      }
    }
    if (closing < 0) continue; // a component of one node without a self-edge: no cycle
    reported.add(c);
    const cycle: number[] = [];
    for (let v = closing; v !== -1; v = parent.get(v)!) cycle.push(v);
    cycles.push(cycle.reverse());
  }
  return cycles;
}

/** Strongly connected components (iterative Tarjan); returns a component number per node. */
function components(g: DagGraph): number[] {
  const n = g.ids.length;
  const index = new Array<number>(n).fill(-1);
  const low = new Array<number>(n).fill(0);
  const comp = new Array<number>(n).fill(-1);
  const onStack = new Array<boolean>(n).fill(false);
  const stack: number[] = [];
  let next = 0;
  let count = 0;
  const work: [node: number, edge: number][] = [];
  for (let root = 0; root < n; root++) {
    if (index[root] !== -1) continue;
    work.push([root, 0]);
    while (work.length > 0) {
      const frame = work[work.length - 1]!;
      const [v, e] = frame;
      if (e === 0 && index[v] === -1) {
        index[v] = low[v] = next++;
        stack.push(v);
        onStack[v] = true;
      }
      const edges = g.downstream[v]!;
      if (e < edges.length) {
        frame[1] = e + 1;
        const w = edges[e]!;
        if (index[w] === -1) work.push([w, 0]);
        else if (onStack[w]) low[v] = Math.min(low[v]!, index[w]!);
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low[parent[0]] = Math.min(low[parent[0]]!, low[v]!);
      if (low[v] === index[v]) {
        let w: number;
        do {
          w = stack.pop()!;
          onStack[w] = false;
          comp[w] = count;
        } while (w !== v);
        count++;
      }
    }
  }
  return comp;
}
