/**
 * Where a step runs: the workspace's only cluster (nothing said), a cluster by name, or any
 * cluster whose labels match a selector.
 */
import { useClient } from "../api/session";
import { useAsync } from "../components/useAsync";
import { isObject, renameKey } from "./document";
import { KeyValueRows, problemsAt, SelectField, TextField } from "./fields";
import { freshKey, type StepEditProps } from "./StepPanel";

export function PlacementEditor({ index, step, problems, set, at }: StepEditProps) {
  const client = useClient();
  const clusters = useAsync((signal) => client.clusters.list({}, { signal }).toArray(), [client]);
  const mode = step.cluster === undefined ? "any" : isObject(step.cluster) ? "labels" : "name";
  const labels = isObject(step.cluster) ? step.cluster : {};
  const listId = `clusters-${index}`;
  return (
    <fieldset>
      <legend>Cluster</legend>
      <SelectField
        label="Runs on"
        value={mode}
        options={[
          ["any", "the workspace's only cluster"],
          ["name", "a cluster, by name"],
          ["labels", "a cluster with these labels"],
        ]}
        onChange={(m) => set(["cluster"], m === "any" ? undefined : m === "name" ? (clusters.value?.[0]?.name ?? "") : { key: "value" })}
        problems={mode === "any" ? problemsAt(problems, at("cluster")) : []}
      />
      {mode === "any" && (clusters.value?.length ?? 0) > 1 && <p className="hint warn">The workspace has {clusters.value?.length} clusters: a run needs this step to name one or select by labels.</p>}
      {mode === "name" && (
        <>
          <TextField label="Cluster name" value={step.cluster} onChange={(v) => set(["cluster"], v)} problems={problemsAt(problems, at("cluster"))} list={listId} />
          <datalist id={listId}>
            {clusters.value?.map((c) => (
              <option key={c.id} value={c.name}>{`${c.status}, ${c.kind}`}</option>
            ))}
          </datalist>
        </>
      )}
      {mode === "labels" && (
        <KeyValueRows
          noun="label"
          entries={labels}
          path={at("cluster")}
          problems={problems}
          onRename={(from, to) => set(["cluster"], renameKey(labels, from, to))}
          onValue={(key, v) => set(["cluster", key], v)}
          onRemove={(key) => set(["cluster"], Object.keys(labels).length > 1 ? Object.fromEntries(Object.entries(labels).filter(([k]) => k !== key)) : {})}
          onAdd={() => set(["cluster", freshKey(labels, "key")], "")}
        />
      )}
    </fieldset>
  );
}
