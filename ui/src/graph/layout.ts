/**
 * Left-to-right layout of a DAG with dagre: upstream steps on the left, fan-out and fan-in in
 * columns. Used by the editor (auto-layout) and the run view.
 */
import dagre from "@dagrejs/dagre";

export const NODE_WIDTH = 220;
export const NODE_HEIGHT = 96;

export function layoutGraph(nodeIds: readonly string[], edges: readonly { source: string; target: string }[]): Record<string, { x: number; y: number }> {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "LR", nodesep: 40, ranksep: 90, marginx: 20, marginy: 20 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const id of nodeIds) g.setNode(id, { width: NODE_WIDTH, height: NODE_HEIGHT });
  for (const e of edges) if (g.hasNode(e.source) && g.hasNode(e.target)) g.setEdge(e.source, e.target);
  dagre.layout(g);
  const out: Record<string, { x: number; y: number }> = {};
  for (const id of nodeIds) {
    const n = g.node(id);
    // dagre gives centres; the graph draws from the top-left corner.
    out[id] = { x: n.x - NODE_WIDTH / 2, y: n.y - NODE_HEIGHT / 2 };
  }
  return out;
}
