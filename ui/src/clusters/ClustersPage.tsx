/**
 * Clusters: online or not, the last heartbeat, what the agent reported (allocatable capacity,
 * Kubernetes version), kind and labels. Refreshed every 10 s, as heartbeats come.
 */
import { useEffect, useState } from "react";
import type { ClusterView } from "../../../proto/client";
import { useClient } from "../api/session";
import { ErrorNote } from "../components/ErrorNote";
import { StatusBadge } from "../components/StatusBadge";
import { ago, localTime } from "../components/time";
import { useAsync } from "../components/useAsync";
import { AddClusterDialog } from "./AddClusterDialog";

export function ClustersPage() {
  const client = useClient();
  const clusters = useAsync((signal) => client.clusters.list({}, { signal }).toArray(), [client]);
  const [adding, setAdding] = useState(false);
  useEffect(() => {
    const timer = setInterval(clusters.reload, 10_000);
    return () => clearInterval(timer);
  }, [clusters.reload]);
  return (
    <section aria-labelledby="clusters-title">
      <div className="page-head">
        <h1 id="clusters-title">Clusters</h1>
        <button type="button" className="primary" onClick={() => setAdding(true)}>
          Add cluster
        </button>
      </div>
      <ErrorNote error={clusters.error} />
      {clusters.value && clusters.value.length === 0 && <p>No cluster yet: add one, then install its agent with the line it shows.</p>}
      {clusters.value && clusters.value.length > 0 && (
        <table className="grid">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Status</th>
              <th scope="col">Last heartbeat</th>
              <th scope="col">Capacity (allocatable)</th>
              <th scope="col">Kubernetes</th>
              <th scope="col">Kind</th>
              <th scope="col">Labels</th>
            </tr>
          </thead>
          <tbody>
            {clusters.value.map((c) => (
              <ClusterRow key={c.id} cluster={c} />
            ))}
          </tbody>
        </table>
      )}
      {adding && (
        <AddClusterDialog
          onClose={() => {
            setAdding(false);
            clusters.reload();
          }}
        />
      )}
    </section>
  );
}

function ClusterRow({ cluster: c }: { cluster: ClusterView }) {
  const alloc = c.agent?.allocatable;
  return (
    <tr>
      <th scope="row">{c.name}</th>
      <td>
        <StatusBadge status={c.status} />
      </td>
      <td title={localTime(c.lastHeartbeatAt)}>{ago(c.lastHeartbeatAt)}</td>
      <td>{alloc ? `${alloc.cpu} CPU · ${alloc.memory} memory · ${alloc.gpu} GPU` : "—"}</td>
      <td>{c.agent?.kubernetesVersion ?? (c.kind === "local" ? "— (local processes)" : "—")}</td>
      <td>{c.kind}</td>
      <td>
        {Object.entries(c.labels).map(([k, v]) => (
          <code key={k} className="label">
            {k}={v}
          </code>
        ))}
      </td>
    </tr>
  );
}
