/** Run history, newest first, filtered by DAG and status (kept in the URL), a page at a time; refreshed every 5 s. */
import { useEffect, useState } from "react";
import { RUN_STATUSES } from "../../../proto/status";
import type { RunView } from "../../../proto/client";
import { useClient } from "../api/session";
import { ErrorNote } from "../components/ErrorNote";
import { StatusBadge } from "../components/StatusBadge";
import { ago, duration, localTime } from "../components/time";
import { useAsync } from "../components/useAsync";
import { href, navigate } from "../router";

const PAGE = 25;

export function RunsPage({ query }: { query: URLSearchParams }) {
  const client = useClient();
  const dag = query.get("dag") ?? "";
  const status = query.get("status") ?? "";
  const [pages, setPages] = useState(1);
  const dags = useAsync((signal) => client.dags.list({}, { signal }).toArray(), [client]);
  const runs = useAsync(
    async (signal) => {
      const list = client.runs.list({ dag: dag || undefined, status: (status || undefined) as RunView["status"] | undefined, limit: PAGE }, { signal });
      const items: RunView[] = [];
      let more = false;
      for await (const page of list.pages()) {
        items.push(...page.items);
        more = page.nextCursor !== null;
        if (items.length >= pages * PAGE) break;
      }
      return { items, more };
    },
    [client, dag, status, pages],
  );
  useEffect(() => {
    const timer = setInterval(runs.reload, 5000);
    return () => clearInterval(timer);
  }, [runs.reload]);
  const setFilter = (key: string, value: string) => {
    const next = new URLSearchParams(query);
    if (value) next.set(key, value);
    else next.delete(key);
    setPages(1);
    navigate(`${href("runs")}${next.size ? `?${next}` : ""}`);
  };
  return (
    <section aria-labelledby="runs-title">
      <div className="page-head">
        <h1 id="runs-title">Runs</h1>
        <label>
          DAG{" "}
          <select value={dag} onChange={(e) => setFilter("dag", e.target.value)}>
            <option value="">all</option>
            {dags.value?.map((d) => (
              <option key={d.name}>{d.name}</option>
            ))}
          </select>
        </label>
        <label>
          Status{" "}
          <select value={status} onChange={(e) => setFilter("status", e.target.value)}>
            <option value="">all</option>
            {RUN_STATUSES.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
      </div>
      <ErrorNote error={runs.error} />
      {runs.value && runs.value.items.length === 0 && <p>No run{dag || status ? " matches these filters" : " yet: start one from a DAG"}.</p>}
      {runs.value && runs.value.items.length > 0 && (
        <table className="grid">
          <thead>
            <tr>
              <th scope="col">Run</th>
              <th scope="col">DAG</th>
              <th scope="col">Status</th>
              <th scope="col">Created</th>
              <th scope="col">Duration</th>
              <th scope="col">Params</th>
            </tr>
          </thead>
          <tbody>
            {runs.value.items.map((r) => (
              <tr key={r.id}>
                <th scope="row">
                  <a href={href("runs", r.id)}>
                    <code>{r.id}</code>
                  </a>
                </th>
                <td>
                  {r.dag} v{r.dagVersion}
                </td>
                <td>
                  <StatusBadge status={r.status} />
                </td>
                <td title={localTime(r.createdAt)}>{ago(r.createdAt)}</td>
                <td>{duration(r.startedAt, r.finishedAt)}</td>
                <td>
                  {Object.entries(r.params).map(([k, v]) => (
                    <code key={k} className="label">{`${k}=${String(v)}`}</code>
                  ))}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {runs.value?.more && (
        <button type="button" onClick={() => setPages((p) => p + 1)}>
          Show more
        </button>
      )}
    </section>
  );
}
