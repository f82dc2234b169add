/**
 * A run's live graph: the DAG version's steps laid out left to right, each with its status colour,
 * attempt and partitions done / running / failed (counts, never a box per partition).
 */
import { Background, Controls, Handle, type Node, type NodeChange, type NodeProps, Position, ReactFlow } from "@xyflow/react";
import { useMemo, useState } from "react";
import type { Dag } from "../../../proto/dag";
import { layoutGraph } from "../graph/layout";
import type { Run } from "./poll";

type NodeRun = NonNullable<Run["nodes"]>[number];
interface RunStepData extends Record<string, unknown> {
  id: string;
  run: NodeRun | undefined;
}
type RunStepNode = Node<RunStepData, "runStep">;

const nodeTypes = { runStep: RunStepView };

export function partitionText(n: NodeRun): string {
  const p = n.partitions;
  return `${p.done}/${p.total} done · ${p.running} running · ${p.failed} failed`;
}

export function RunGraph({ spec, run, selected, onSelect }: { spec: Dag; run: Run; selected: string | null; onSelect: (id: string | null) => void }) {
  const edges = useMemo(
    () =>
      spec.nodes.flatMap((n) => [
        ...Object.entries(n.inputs ?? {}).flatMap(([name, ref]) => ("node" in ref ? [{ id: `${ref.node}->${n.id}:${name}`, source: ref.node, target: n.id, label: name }] : [])),
        ...(n.after ?? []).map((a) => ({ id: `${a}->${n.id}:after`, source: a, target: n.id, style: { strokeDasharray: "4 3" } })),
      ]),
    [spec],
  );
  const positions = useMemo(
    () =>
      layoutGraph(
        spec.nodes.map((n) => n.id),
        edges,
      ),
    [spec, edges],
  );
  // Sizes the graph measured, handed back with the nodes drawn anew on each poll (or it would hide them to measure again).
  const [measured, setMeasured] = useState<Record<string, { width: number; height: number }>>({});
  const onNodesChange = (changes: NodeChange<RunStepNode>[]) => {
    const sized = Object.fromEntries(changes.flatMap((c) => (c.type === "dimensions" && c.dimensions ? [[c.id, c.dimensions]] : [])));
    if (Object.keys(sized).length) setMeasured((m) => ({ ...m, ...sized }));
  };
  const byId = new Map((run.nodes ?? []).map((n) => [n.nodeId, n]));
  const nodes: RunStepNode[] = spec.nodes.map((n) => {
    const nodeRun = byId.get(n.id);
    return {
      id: n.id,
      type: "runStep",
      position: positions[n.id]!,
      selected: selected === n.id,
      draggable: false,
      connectable: false,
      measured: measured[n.id],
      ariaLabel: `${n.id}: ${nodeRun?.status ?? "unknown"}`,
      data: { id: n.id, run: nodeRun },
    };
  });
  const animated = edges.map((e) => ({ ...e, animated: byId.get(e.target)?.status === "running" }));
  return (
    <section className="canvas run-canvas" aria-label="Run graph">
      <ReactFlow
        nodes={nodes}
        edges={animated}
        nodeTypes={nodeTypes}
        onNodesChange={onNodesChange}
        onNodeClick={(_, n) => onSelect(n.id)}
        onPaneClick={() => onSelect(null)}
        nodesConnectable={false}
        nodesDraggable={false}
        edgesFocusable={false}
        fitView
        fitViewOptions={{ padding: 0.2, maxZoom: 1 }}
        proOptions={{ hideAttribution: true }}
      >
        <Background />
        <Controls showInteractive={false} />
      </ReactFlow>
    </section>
  );
}

function RunStepView({ data, selected }: NodeProps<RunStepNode>) {
  const n = data.run;
  const status = n?.status ?? "unknown";
  return (
    <div className={`step-node run-step status-border-${status}${selected ? " selected" : ""}`}>
      <Handle type="target" position={Position.Left} isConnectable={false} />
      <div className="step-title">{data.id}</div>
      <div className={`badge status-${status}`}>{status}</div>
      {n && (
        <div className="step-project">
          {n.partitions.total > 1 ? partitionText(n) : n.attempt > 0 ? `attempt ${n.attempt}` : ""}
          {n.partitions.total > 1 && n.attempt > 1 ? ` · attempt ${n.attempt}` : ""}
        </div>
      )}
      <Handle type="source" position={Position.Right} isConnectable={false} />
    </div>
  );
}
