/**
 * The editing canvas: the graph drawn from the document. Dropping a palette item adds a step where
 * it was dropped (`screenToFlowPosition`, as xyflow's drag-and-drop example does); connecting an
 * output to an input handle adds or re-points that input; deleting nodes or edges removes steps or
 * inputs. Moving a node only moves the drawing: positions are not part of the document.
 */
import { Background, type Connection, Controls, type Edge, MiniMap, type NodeChange, ReactFlow, useReactFlow } from "@xyflow/react";
import { type DragEvent, useCallback, useEffect, useMemo, useState } from "react";
import { layoutGraph } from "../graph/layout";
import { addStep, connect, type DagDoc, freshStepId, removeStep, setIn, stepIdOf } from "./document";
import { type EdgeRef, type StepNode, stepEdges, stepNodes } from "./graph";
import { DRAG_TYPE, STEP_TEMPLATES, type StepTemplate } from "./Palette";
import { StepNodeView } from "./StepNodeView";
import { graphId, useEditor } from "./store";

const nodeTypes = { step: StepNodeView };

/** Adds a step from a template, at a drawn position: one document edit, one view update. */
export function useAddStep() {
  const { edit, setPositions, select } = useEditor();
  return useCallback(
    (template: StepTemplate, position: { x: number; y: number }) => {
      let added: DagDoc | undefined;
      edit((d) => {
        added = addStep(d, { id: freshStepId(d), ...structuredClone(template.step) });
        return added;
      });
      if (!added) return;
      const index = added.nodes.length - 1;
      setPositions({ [graphId(added, index)]: position });
      select(index);
    },
    [edit, setPositions, select],
  );
}

export function Canvas() {
  const { doc, problems, positions, selected, layoutRequest, edit, select, setPositions } = useEditor();
  const { screenToFlowPosition, fitView } = useReactFlow();
  const addStepAt = useAddStep();
  // Sizes the graph measured; kept so the nodes it draws from the document stay measured.
  const [measured, setMeasured] = useState<Record<string, { width: number; height: number }>>({});

  const nodes: StepNode[] = useMemo(() => stepNodes(doc, problems, positions, selected).map((n) => ({ ...n, measured: measured[n.id] })), [doc, problems, positions, selected, measured]);
  const edges = useMemo(() => stepEdges(doc), [doc]);

  // Auto-layout when asked (opened, imported, the button) and when a step has no place yet.
  const unplaced = nodes.some((n) => !positions[n.id]);
  // biome-ignore lint/correctness/useExhaustiveDependencies: lays out on request, not on every edit
  useEffect(() => {
    if (doc.nodes.length === 0) return;
    setPositions(
      layoutGraph(
        nodes.map((n) => n.id),
        edges,
      ),
    );
    requestAnimationFrame(() => void fitView({ padding: 0.2, maxZoom: 1, duration: 200 }));
  }, [layoutRequest, unplaced && doc.nodes.length]);

  const indexOf = useCallback((gid: string) => nodes.find((n) => n.id === gid)?.data.index, [nodes]);

  const onNodesChange = useCallback(
    (changes: NodeChange<StepNode>[]) => {
      const moved: Record<string, { x: number; y: number }> = {};
      const sized: Record<string, { width: number; height: number }> = {};
      let selection: number | null | undefined;
      for (const c of changes) {
        if (c.type === "position" && c.position) moved[c.id] = c.position;
        else if (c.type === "dimensions" && c.dimensions) sized[c.id] = c.dimensions;
        else if (c.type === "select") {
          if (c.selected) selection = indexOf(c.id) ?? null;
          else if (selection === undefined && indexOf(c.id) === selected) selection = null;
        }
      }
      if (Object.keys(moved).length) setPositions(moved);
      if (Object.keys(sized).length) setMeasured((m) => ({ ...m, ...sized }));
      if (selection !== undefined) select(selection);
    },
    [indexOf, selected, select, setPositions],
  );

  const onConnect = useCallback(
    (c: Connection) => {
      const source = indexOf(c.source);
      const target = indexOf(c.target);
      if (source === undefined || target === undefined) return;
      const input = c.targetHandle?.startsWith("in:") && c.targetHandle !== "in:+" ? c.targetHandle.slice(3) : undefined;
      edit((d) => connect(d, source, target, input));
    },
    [edit, indexOf],
  );

  const onDelete = useCallback(
    ({ nodes: goneNodes, edges: goneEdges }: { nodes: StepNode[]; edges: Edge[] }) => {
      const stepIds = goneNodes.map((n) => stepIdOf(doc.nodes[n.data.index]));
      edit((d) => {
        let out = d;
        for (const e of goneEdges) out = removeEdge(out, (e.data as { ref: EdgeRef }).ref);
        // By id, highest index first, so earlier removals do not shift later ones.
        for (const index of goneNodes.map((n) => n.data.index).sort((a, b) => b - a)) out = removeStep(out, index);
        return out;
      });
      if (stepIds.length) select(null);
    },
    [doc, edit, select],
  );

  const onDragOver = useCallback((e: DragEvent) => {
    e.preventDefault();
    e.dataTransfer.dropEffect = "move";
  }, []);

  const onDrop = useCallback(
    (e: DragEvent) => {
      e.preventDefault();
      const template = STEP_TEMPLATES.find((t) => t.key === e.dataTransfer.getData(DRAG_TYPE));
      if (template) addStepAt(template, screenToFlowPosition({ x: e.clientX, y: e.clientY }));
    },
    [addStepAt, screenToFlowPosition],
  );

  return (
    <section className="canvas" aria-label="DAG canvas">
      <ReactFlow
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        onNodesChange={onNodesChange}
        onConnect={onConnect}
        onDelete={onDelete}
        isValidConnection={(c) => c.source !== c.target}
        onDragOver={onDragOver}
        onDrop={onDrop}
        onPaneClick={() => select(null)}
        deleteKeyCode={["Delete", "Backspace"]}
        minZoom={0.2}
        proOptions={{ hideAttribution: true }}
      >
        <Background />
        <Controls />
        <MiniMap pannable zoomable ariaLabel="Overview of the DAG" />
      </ReactFlow>
      {doc.nodes.length === 0 && <p className="canvas-empty">Drag a step from the palette here.</p>}
    </section>
  );
}

function removeEdge(doc: DagDoc, ref: EdgeRef): DagDoc {
  if (ref.kind === "input") return setIn(doc, ["nodes", ref.target, "inputs", ref.name], undefined);
  const after = doc.nodes[ref.target]?.after;
  const rest = Array.isArray(after) ? after.filter((a) => a !== ref.upstream) : [];
  return setIn(doc, ["nodes", ref.target, "after"], rest.length ? rest : undefined);
}
