/**
 * The graph drawn from the document: one node per step, one edge per `inputs.{name}: {node: …}`
 * and per `after` entry. Nothing here is stored: it is recomputed from the document on change.
 */
import type { Edge, Node } from "@xyflow/react";
import { type DagDoc, isObject, stepIdOf } from "./document";
import { graphId, stepProblems, type XY } from "./store";
import type { Problem } from "../../../proto/dag";

export interface StepData extends Record<string, unknown> {
  index: number;
  id: string;
  project: string;
  /** Input names fed by another step, each a handle to connect to. */
  stepInputs: string[];
  partitioned: string | null;
  problems: { field: string; message: string }[];
}
export type StepNode = Node<StepData, "step">;

/** What an edge stands for in the document, so deleting it removes the right thing. */
export type EdgeRef = { kind: "input"; target: number; name: string } | { kind: "after"; target: number; upstream: string };

export function stepNodes(doc: DagDoc, problems: readonly Problem[], positions: Record<string, XY>, selected: number | null): StepNode[] {
  return doc.nodes.map((step, index) => {
    const id = stepIdOf(step);
    const inputs = isObject(step.inputs) ? step.inputs : {};
    const project = isObject(step.project) && typeof step.project.uri === "string" ? step.project.uri : "";
    const stepProblemList = stepProblems(problems, index);
    const gid = graphId(doc, index);
    return {
      id: gid,
      type: "step",
      position: positions[gid] ?? { x: 40 + index * 40, y: 40 + index * 40 },
      selected: selected === index,
      ariaLabel: `Step ${id || `#${index + 1}`}${stepProblemList.length ? `, ${stepProblemList.length} problem${stepProblemList.length > 1 ? "s" : ""}` : ""}`,
      data: {
        index,
        id,
        project,
        stepInputs: Object.entries(inputs)
          .filter(([, ref]) => isObject(ref) && "node" in ref)
          .map(([name]) => name),
        partitioned: isObject(step.partition) && typeof step.partition.by === "string" && step.partition.by !== "none" ? step.partition.by : null,
        problems: stepProblemList,
      },
    };
  });
}

export function stepEdges(doc: DagDoc): Edge<{ ref: EdgeRef }>[] {
  const indexOf = new Map<string, number>();
  doc.nodes.forEach((n, i) => {
    const id = stepIdOf(n);
    if (id && !indexOf.has(id)) indexOf.set(id, i);
  });
  const edges: Edge<{ ref: EdgeRef }>[] = [];
  doc.nodes.forEach((step, target) => {
    const targetId = graphId(doc, target);
    if (isObject(step.inputs)) {
      for (const [name, ref] of Object.entries(step.inputs)) {
        const source = isObject(ref) && typeof ref.node === "string" ? indexOf.get(ref.node) : undefined;
        if (source === undefined) continue;
        const upstream = stepIdOf(doc.nodes[source]);
        edges.push({
          id: `input:${target}:${name}`,
          source: graphId(doc, source),
          target: targetId,
          targetHandle: `in:${name}`,
          label: name,
          ariaLabel: `${upstream} into ${stepIdOf(step)}'s input ${name}`,
          data: { ref: { kind: "input", target, name } },
        });
      }
    }
    if (Array.isArray(step.after)) {
      for (const upstream of step.after) {
        const source = typeof upstream === "string" ? indexOf.get(upstream) : undefined;
        if (source === undefined || typeof upstream !== "string") continue;
        edges.push({
          id: `after:${target}:${upstream}`,
          source: graphId(doc, source),
          target: targetId,
          targetHandle: "in:+",
          label: "after",
          style: { strokeDasharray: "4 3" },
          ariaLabel: `${stepIdOf(step)} after ${upstream}`,
          data: { ref: { kind: "after", target, upstream } },
        });
      }
    }
  });
  return edges;
}
