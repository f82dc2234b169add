/** The DAG's own fields: name, description, failure policy, experiment, and its params (defaults a run may override). */
import { isObject, renameKey, scalarFromText, setIn } from "./document";
import { dagProblems, useEditor } from "./store";
import { KeyValueRows, problemsAt, ProblemList, SelectField, TextField } from "./fields";
import { freshKey } from "./StepPanel";

export function DagPanel() {
  const { doc, problems, edit } = useEditor();
  const params = isObject(doc.params) ? doc.params : {};
  const setParams = (next: typeof params) => edit((d) => setIn(d, ["params"], next), "params");
  const general = dagProblems(problems).filter((p) => !/^(name|description|params|failurePolicy|experiment)\b/.test(p.path));
  return (
    <section className="panel" aria-label="DAG">
      <h2>DAG</h2>
      <ProblemList id="dag-problems" problems={general} />
      <TextField label="DAG name" value={doc.name} onChange={(v) => edit((d) => setIn(d, ["name"], v), "name")} problems={problemsAt(problems, ["name"])} placeholder="wordcount" />
      <TextField label="Description" value={doc.description} onChange={(v) => edit((d) => setIn(d, ["description"], v || undefined), "description")} problems={problemsAt(problems, ["description"])} />
      <SelectField
        label="Failure policy"
        value={typeof doc.failurePolicy === "string" ? doc.failurePolicy : "failFast"}
        options={[
          ["failFast", "failFast: the first step failing for good fails the run"],
          ["continue", "continue: independent branches go on"],
        ]}
        onChange={(v) => edit((d) => setIn(d, ["failurePolicy"], v === "failFast" ? undefined : v))}
        problems={problemsAt(problems, ["failurePolicy"])}
      />
      <TextField
        label="MLflow experiment"
        value={doc.experiment}
        onChange={(v) => edit((d) => setIn(d, ["experiment"], v || undefined), "experiment")}
        problems={problemsAt(problems, ["experiment"])}
        placeholder="(the DAG's name)"
      />
      <fieldset>
        <legend>DAG params</legend>
        <KeyValueRows
          noun="DAG param"
          entries={params}
          path={["params"]}
          problems={problems}
          onRename={(from, to) => setParams(renameKey(params, from, to))}
          onValue={(key, v) => setParams({ ...params, [key]: scalarFromText(v) })}
          onRemove={(key) => setParams(Object.fromEntries(Object.entries(params).filter(([k]) => k !== key)))}
          onAdd={() => setParams({ ...params, [freshKey(params, "param")]: "" })}
        />
        <p className="hint">Defaults a run may override; a step uses one as {"${params.NAME}"}.</p>
      </fieldset>
    </section>
  );
}
