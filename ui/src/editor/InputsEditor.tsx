/**
 * A step's inputs: each one named, fed by another step (an edge of the graph), by an MLflow run's
 * artifacts, by the runs of an MLflow experiment, or by a URI. Connecting two steps on the canvas adds one; this is the same from the
 * keyboard.
 */
import { isObject, type JsonObject, renameKey, stepIdOf } from "./document";
import { problemsAt, ProblemList } from "./fields";
import { freshKey, type StepEditProps } from "./StepPanel";

type Kind = "node" | "run" | "experiment" | "uri";
const kindOf = (ref: unknown): Kind => (isObject(ref) ? (["run", "experiment", "uri"] as const).find((k) => k in ref) : undefined) ?? "node";
const SOURCE_LABEL = { run: "Run id", experiment: "Experiment", uri: "URI" } as const;

export function InputsEditor({ doc, index, step, problems, set, at }: StepEditProps) {
  const inputs = isObject(step.inputs) ? step.inputs : {};
  const others = doc.nodes.map(stepIdOf).filter((id, i) => i !== index && id !== "");
  const setRef = (name: string, ref: JsonObject) => set(["inputs", name], ref);
  return (
    <fieldset>
      <legend>Inputs</legend>
      {Object.entries(inputs).map(([name, ref], i) => {
        const kind = kindOf(ref);
        const r = isObject(ref) ? ref : {};
        const rowProblems = problemsAt(problems, at("inputs", name));
        const source = String(r[kind] ?? "");
        return (
          // biome-ignore lint/suspicious/noArrayIndexKey: by place, so renaming an input keeps its row (and the focus in it)
          <div key={i} className="input-row">
            <input aria-label={`Name of input ${i + 1}`} value={name} onChange={(e) => set(["inputs"], renameKey(inputs, name, e.target.value))} spellCheck={false} />
            <select aria-label={`Source kind of input ${name}`} value={kind} onChange={(e) => setRef(name, { [e.target.value]: e.target.value === "node" ? (others[0] ?? "") : "" })}>
              <option value="node">step</option>
              <option value="run">MLflow run</option>
              <option value="experiment">MLflow experiment's runs</option>
              <option value="uri">URI</option>
            </select>
            {kind === "node" ? (
              <select aria-label={`Upstream step of input ${name}`} value={source} onChange={(e) => setRef(name, { ...r, node: e.target.value })}>
                {!others.includes(source) && <option value={source}>{source || "(choose)"}</option>}
                {others.map((id) => (
                  <option key={id}>{id}</option>
                ))}
              </select>
            ) : (
              <input aria-label={`${SOURCE_LABEL[kind]} of input ${name}`} value={source} onChange={(e) => setRef(name, { ...r, [kind]: e.target.value })} spellCheck={false} />
            )}
            {kind !== "uri" && (
              <input
                aria-label={`Path inside input ${name}`}
                placeholder="path (optional)"
                value={String(r.path ?? "")}
                onChange={(e) => setRef(name, { ...Object.fromEntries(Object.entries(r).filter(([k]) => k !== "path")), ...(e.target.value ? { path: e.target.value } : {}) })}
              />
            )}
            <button type="button" className="icon" aria-label={`Remove input ${name}`} onClick={() => set(["inputs", name], undefined)}>
              ×
            </button>
            <ProblemList id={`input-${index}-${i}-problems`} problems={rowProblems} />
          </div>
        );
      })}
      <div className="row">
        <button type="button" onClick={() => set(["inputs", freshKey(inputs, "input")], others[0] ? { node: others[0] } : { uri: "" })}>
          Add input
        </button>
      </div>
    </fieldset>
  );
}
