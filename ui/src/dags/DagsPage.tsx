/** DAGs of the workspace: open one in the editor, start a run of its latest version, see its runs; or start a new one. */
import { useState } from "react";
import type { DagView } from "../../../proto/client";
import { useClient } from "../api/session";
import { ErrorNote } from "../components/ErrorNote";
import { ago, localTime } from "../components/time";
import { useAsync } from "../components/useAsync";
import { href } from "../router";
import { StartRunDialog } from "../runs/StartRunDialog";

export function DagsPage() {
  const client = useClient();
  const dags = useAsync((signal) => client.dags.list({}, { signal }).toArray(), [client]);
  const [starting, setStarting] = useState<DagView | null>(null);
  const [startError, setStartError] = useState<unknown>(null);
  const start = (name: string) => client.dags.get(name).then(setStarting, setStartError);
  return (
    <section aria-labelledby="dags-title">
      <div className="page-head">
        <h1 id="dags-title">DAGs</h1>
        <a className="button primary" href={href("dags", "new")}>
          New DAG
        </a>
      </div>
      <ErrorNote error={dags.error ?? startError} />
      {dags.value && dags.value.length === 0 && <p>No DAG yet: create one in the editor, or PUT a YAML file to the API.</p>}
      {dags.value && dags.value.length > 0 && (
        <table className="grid">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Latest version</th>
              <th scope="col">Updated</th>
              <th scope="col">Description</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {dags.value.map((d) => (
              <tr key={d.name}>
                <th scope="row">{d.name}</th>
                <td>{d.latestVersion}</td>
                <td title={localTime(d.updatedAt)}>{ago(d.updatedAt)}</td>
                <td>{d.description ?? ""}</td>
                <td className="actions">
                  <a href={href("dags", d.name, "edit")} aria-label={`Edit ${d.name}`}>
                    Edit
                  </a>
                  <button type="button" onClick={() => void start(d.name)} aria-label={`Start a run of ${d.name}`}>
                    Start run…
                  </button>
                  <a href={`${href("runs")}?dag=${encodeURIComponent(d.name)}`} aria-label={`Runs of ${d.name}`}>
                    Runs
                  </a>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {starting && <StartRunDialog dag={starting} onClose={() => setStarting(null)} />}
    </section>
  );
}
