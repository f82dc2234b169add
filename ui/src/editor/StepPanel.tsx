/**
 * The selected step's fields: project, entry point, parameters, inputs, where it runs, how it is
 * partitioned, parallelism, retries and resources. Each field writes into the document at its path
 * and shows the problems validation finds there.
 */
import type { Problem } from "../../../proto/dag";
import { type DagDoc, getIn, isObject, type Json, type JsonObject, numberFromText, type Path, renameKey, renameStep, removeStep, scalarFromText, setIn, stepIdOf } from "./document";
import { KeyValueRows, problemsAt, ProblemList, TextField } from "./fields";
import { InputsEditor } from "./InputsEditor";
import { PlacementEditor } from "./PlacementEditor";
import { PartitionEditor } from "./PartitionEditor";
import { useEditor } from "./store";

export interface StepEditProps {
  doc: DagDoc;
  index: number;
  step: JsonObject;
  problems: readonly Problem[];
  /** Sets a value at a path inside the step (undefined removes it). */
  set: (path: Path, value: Json | undefined) => void;
  /** The path of a place inside the step, from the document's root (for problems). */
  at: (...path: Path) => Path;
}

export function StepPanel({ index }: { index: number }) {
  const { doc, problems, edit, select } = useEditor();
  const step = doc.nodes[index];
  if (!step) return null;
  const id = stepIdOf(step);
  const at = (...path: Path): Path => ["nodes", index, ...path];
  const set = (path: Path, value: Json | undefined) => edit((d) => setIn(d, at(...path), value), `step:${index}:${path.join(".")}`);
  const props: StepEditProps = { doc, index, step, problems, set, at };
  const text = (path: Path) => getIn(step, path);
  const stepOnly = problems.filter((p) => p.path === `nodes[${index}]`);
  const parameters = isObject(step.parameters) ? step.parameters : {};
  return (
    <section className="panel" aria-label={`Step ${id || index + 1}`}>
      <div className="panel-head">
        <h2>Step {id || <em>(no id)</em>}</h2>
        <button
          type="button"
          className="danger"
          onClick={() => {
            edit((d) => removeStep(d, index));
            select(null);
          }}
        >
          Delete step
        </button>
      </div>
      <ProblemList id={`step-${index}-problems`} problems={stepOnly} />
      <TextField label="Step id" value={step.id} onChange={(v) => edit((d) => renameStep(d, index, v), `step:${index}:id`)} problems={problemsAt(problems, at("id"))} />

      <fieldset>
        <legend>Project</legend>
        <TextField
          label="Project URI"
          value={text(["project", "uri"])}
          onChange={(v) => set(["project", "uri"], v)}
          problems={problemsAt(problems, at("project", "uri"))}
          placeholder="https://github.com/org/repo.git or ./local/path"
          hint="A git URL, or a path the agent resolves in its projects root"
        />
        <TextField
          label="Git version"
          value={text(["project", "version"])}
          onChange={(v) => set(["project", "version"], v || undefined)}
          problems={problemsAt(problems, at("project", "version"))}
          placeholder="commit, branch or tag"
        />
        <TextField
          label="Subdirectory"
          value={text(["project", "subdirectory"])}
          onChange={(v) => set(["project", "subdirectory"], v || undefined)}
          problems={problemsAt(problems, at("project", "subdirectory"))}
        />
        <ProblemList id={`step-${index}-project`} problems={problems.filter((p) => p.path === `nodes[${index}].project`)} />
        <TextField label="Entry point" value={text(["entryPoint"])} onChange={(v) => set(["entryPoint"], v || undefined)} problems={problemsAt(problems, at("entryPoint"))} placeholder="main" />
      </fieldset>

      <fieldset>
        <legend>Parameters</legend>
        <KeyValueRows
          noun="parameter"
          entries={parameters}
          path={at("parameters")}
          problems={problems}
          onRename={(from, to) => set(["parameters"], renameKey(parameters, from, to))}
          onValue={(key, v) => set(["parameters", key], scalarFromText(v))}
          onRemove={(key) => set(["parameters", key], undefined)}
          onAdd={() => set(["parameters", freshKey(parameters, "name")], "")}
        />
        <p className="hint">
          <code>{"${params.NAME}"}</code> uses a DAG param; the whole value keeps the param's type.
        </p>
      </fieldset>

      <InputsEditor {...props} />
      <PlacementEditor {...props} />
      <PartitionEditor {...props} />

      <fieldset>
        <legend>Execution</legend>
        <TextField
          label="Parallelism"
          value={step.parallelism}
          onChange={(v) => set(["parallelism"], numberFromText(v))}
          problems={problemsAt(problems, at("parallelism"))}
          placeholder="1"
          hint="Most containers at once"
        />
        <TextField label="Retries" value={step.retries} onChange={(v) => set(["retries"], numberFromText(v))} problems={problemsAt(problems, at("retries"))} placeholder="0" />
      </fieldset>

      <fieldset>
        <legend>Resources (per container)</legend>
        <TextField
          label="CPU"
          value={text(["resources", "cpu"])}
          onChange={(v) => set(["resources", "cpu"], v || undefined)}
          problems={problemsAt(problems, at("resources", "cpu"))}
          placeholder="500m or 2"
        />
        <TextField
          label="Memory"
          value={text(["resources", "memory"])}
          onChange={(v) => set(["resources", "memory"], v || undefined)}
          problems={problemsAt(problems, at("resources", "memory"))}
          placeholder="512Mi or 4Gi"
        />
        <TextField
          label="GPUs"
          value={text(["resources", "gpu"])}
          onChange={(v) => set(["resources", "gpu"], numberFromText(v))}
          problems={problemsAt(problems, at("resources", "gpu"))}
          placeholder="0"
        />
        <ProblemList id={`step-${index}-resources`} problems={problems.filter((p) => p.path === `nodes[${index}].resources`)} />
      </fieldset>
    </section>
  );
}

/** A key the object does not have yet: `name`, `name2`… */
export function freshKey(obj: JsonObject, base: string): string {
  if (!(base in obj)) return base;
  for (let i = 2; ; i++) if (!(`${base}${i}` in obj)) return `${base}${i}`;
}
