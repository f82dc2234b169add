/**
 * Adds a cluster. The API answers once with the agent's bootstrap token inside a
 * `helm upgrade --install` line: it is shown here this once, with a copy button, and never again
 * (a new one needs `POST /v1/clusters/{name}/bootstrap`).
 */
import { type FormEvent, useState } from "react";
import type { ClusterCreated } from "../../../proto/client";
import { useClient } from "../api/session";
import { CopyButton } from "../components/CopyButton";
import { Dialog } from "../components/Dialog";
import { ErrorNote } from "../components/ErrorNote";
import { localTime } from "../components/time";

const KINDS = ["generic", "eks", "ezmeral", "local"] as const;

/** `gpu=true, zone=eu` → {gpu: "true", zone: "eu"}; the API checks the keys and values. */
export function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of text.split(/[,\n]/)) {
    const [k, ...v] = pair.split("=");
    if (k?.trim()) labels[k.trim()] = v.join("=").trim();
  }
  return labels;
}

export function AddClusterDialog({ onClose }: { onClose: () => void }) {
  const client = useClient();
  const [name, setName] = useState("");
  const [kind, setKind] = useState<(typeof KINDS)[number]>("generic");
  const [labels, setLabels] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [created, setCreated] = useState<ClusterCreated | null>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    await client.clusters.create({ name, kind, labels: parseLabels(labels) }).then(setCreated, setError);
  };
  return (
    <Dialog title={created ? `Install the agent of ${created.cluster.name}` : "Add cluster"} onClose={onClose} wide={created !== null}>
      {created ? (
        <div className="stack">
          <p>
            Run this from the repository root on a machine that reaches the cluster, with <code>MLFLOW_TRACKING_URI</code> set to the MLflow server the steps log to. It holds the agent's bootstrap
            token, valid until {localTime(created.bootstrap.expiresAt)} and shown <strong>only this once</strong>.
          </p>
          <pre className="command">{created.bootstrap.helmInstall}</pre>
          <CopyButton text={created.bootstrap.helmInstall} label="Copy the helm install command" />
          <button type="button" className="primary" onClick={onClose}>
            Done
          </button>
        </div>
      ) : (
        <form onSubmit={submit} className="stack">
          <label>
            Name
            <input value={name} onChange={(e) => setName(e.target.value)} required pattern="[a-z0-9]([\-a-z0-9]*[a-z0-9])?" title="lowercase letters, digits and '-'" />
          </label>
          <label>
            Kind
            <select value={kind} onChange={(e) => setKind(e.target.value as (typeof KINDS)[number])}>
              {KINDS.map((k) => (
                <option key={k}>{k}</option>
              ))}
            </select>
          </label>
          <label>
            Labels <span className="muted">(key=value, comma-separated; matched by steps' cluster selectors)</span>
            <input value={labels} onChange={(e) => setLabels(e.target.value)} placeholder="gpu=true, zone=eu" />
          </label>
          <ErrorNote error={error} />
          <button type="submit" className="primary">
            Add cluster
          </button>
        </form>
      )}
    </Dialog>
  );
}
