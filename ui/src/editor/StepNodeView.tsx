/**
 * A step on the canvas: its id and project, a handle per input fed by another step plus one to
 * add an input, an output handle, and its validation problems. Handles have accessible names, so
 * a person with a screen reader (and the tests) can tell them apart.
 */
import { Handle, type NodeProps, Position, useUpdateNodeInternals } from "@xyflow/react";
import { useEffect } from "react";
import type { StepNode } from "./graph";

export function StepNodeView({ id, data, selected }: NodeProps<StepNode>) {
  const updateNodeInternals = useUpdateNodeInternals();
  const handles = [...data.stepInputs, "+"];
  // Handles come and go with inputs: the graph must measure them again to draw edges to them.
  // biome-ignore lint/correctness/useExhaustiveDependencies: re-measure when the list of handles changes
  useEffect(() => updateNodeInternals(id), [id, handles.join("\n"), updateNodeInternals]);
  const name = data.id || `#${data.index + 1}`;
  return (
    <div className={`step-node${data.problems.length ? " invalid" : ""}${selected ? " selected" : ""}`}>
      {handles.map((input, i) => (
        <Handle
          key={input}
          type="target"
          id={`in:${input}`}
          position={Position.Left}
          style={{ top: `${((i + 1) / (handles.length + 1)) * 100}%` }}
          aria-label={input === "+" ? `New input of ${name}` : `Input ${input} of ${name}`}
          title={input === "+" ? "drop a connection here to add an input" : `input ${input}`}
          className={input === "+" ? "handle-new" : undefined}
        />
      ))}
      <div className="step-title">{name}</div>
      <div className="step-project">{data.project || "no project yet"}</div>
      {data.partitioned && <div className="step-tag">partitioned by {data.partitioned}</div>}
      {data.problems.length > 0 && (
        <p className="step-problem">
          ⚠ {data.problems[0]!.message}
          {data.problems.length > 1 ? ` (+${data.problems.length - 1} more)` : ""}
        </p>
      )}
      <Handle type="source" id="out" position={Position.Right} aria-label={`Output of ${name}`} title="drag to a step's input" />
    </div>
  );
}
