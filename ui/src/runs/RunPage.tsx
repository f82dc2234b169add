/**
 * One run, live: its status and params, the MLflow parent run, the graph of its steps with their
 * statuses and partition counts, each step's MLflow run link and message, and cancel. Selecting a
 * step shows which of its partitions failed and why.
 */
import { useState } from "react";
import { isResumableRun, isTerminalRun } from "../../../proto/status";
import { useClient } from "../api/session";
import { ErrorNote } from "../components/ErrorNote";
import { StatusBadge } from "../components/StatusBadge";
import { duration, localTime } from "../components/time";
import { useAsync } from "../components/useAsync";
import { href, navigate } from "../router";
import { NodePanel } from "./NodePanel";
import { type Run, useLiveRun } from "./poll";
import { partitionText, RunGraph } from "./RunGraph";

export function RunPage({ runId }: { runId: string }) {
  const client = useClient();
  const [refresh, setRefresh] = useState(0);
  const live = useLiveRun(runId, refresh);
  const run = live.value;
  const dag = useAsync((signal) => (run ? client.dags.get(run.dag, { version: run.dagVersion }, { signal }) : Promise.resolve(undefined)), [client, run?.dag, run?.dagVersion]);
  const [selected, setSelected] = useState<string | null>(null);
  const [cancelError, setCancelError] = useState<unknown>(null);
  if (!run) return live.error ? <ErrorNote error={new Error(live.error)} /> : <p>Loading run {runId}…</p>;
  const cancel = async (force: boolean) => {
    setCancelError(null);
    await client.runs.cancel(run.id, { force }).then(() => setRefresh((n) => n + 1), setCancelError);
  };
  const resume = async () => {
    setCancelError(null);
    await client.runs.resume(run.id).then((r) => navigate(href("runs", r.id)), setCancelError);
  };
  const ended = isTerminalRun(run.status);
  return (
    <section className="run-page" aria-labelledby="run-title">
      <div className="page-head">
        <h1 id="run-title">
          Run <code>{run.id}</code> of <a href={`${href("dags", run.dag, "edit")}?version=${run.dagVersion}`}>{run.dag}</a> v{run.dagVersion}
        </h1>
        <span role="status" aria-label="Run status">
          <StatusBadge status={run.status} />
        </span>
        {!ended && (
          <button type="button" className="danger" onClick={() => void cancel(false)} disabled={run.cancelRequested}>
            {run.cancelRequested ? "Cancelling…" : "Cancel run"}
          </button>
        )}
        {isResumableRun(run.status) && (
          <button type="button" onClick={() => void resume()} title="a new run that reuses the steps that succeeded and runs the others">
            Resume
          </button>
        )}
        {run.status === "cancelling" && (
          <button type="button" onClick={() => void cancel(true)} title="for a cluster that will never report again: ends the run now">
            Force cancel
          </button>
        )}
      </div>
      <ErrorNote error={cancelError} />
      {live.error && <p className="muted">{live.error} (retrying)</p>}
      <RunFacts run={run} />
      <div className="run-body">
        {dag.value ? <RunGraph spec={dag.value.spec} run={run} selected={selected} onSelect={setSelected} /> : <ErrorNote error={dag.error} />}
        <div className="side">
          {selected ? <NodePanel run={run} nodeId={selected} onClose={() => setSelected(null)} /> : <StepTable run={run} order={dag.value?.spec.nodes.map((n) => n.id)} onSelect={setSelected} />}
        </div>
      </div>
    </section>
  );
}

function RunFacts({ run }: { run: Run }) {
  return (
    <dl className="facts">
      {run.resumedFrom && (
        <>
          <dt>Resumes</dt>
          <dd>
            <a href={href("runs", run.resumedFrom)}>run {run.resumedFrom}</a>
          </dd>
        </>
      )}
      <dt>Params</dt>
      <dd>{Object.keys(run.params).length ? Object.entries(run.params).map(([k, v]) => <code key={k} className="label">{`${k}=${String(v)}`}</code>) : "defaults"}</dd>
      <dt>Created</dt>
      <dd>{localTime(run.createdAt)}</dd>
      <dt>Duration</dt>
      <dd>{duration(run.startedAt, run.finishedAt)}</dd>
      <dt>MLflow</dt>
      <dd>
        {run.mlflowUrl ? (
          <a href={run.mlflowUrl} target="_blank" rel="noreferrer">
            parent run {run.mlflowRunId}
          </a>
        ) : (
          (run.mlflowRunId ?? run.mlflowNote ?? "—")
        )}
      </dd>
    </dl>
  );
}

function StepTable({ run, order, onSelect }: { run: Run; order: string[] | undefined; onSelect: (id: string) => void }) {
  const nodes = [...(run.nodes ?? [])].sort((a, b) => (order ? order.indexOf(a.nodeId) - order.indexOf(b.nodeId) : 0));
  return (
    <section className="panel" aria-label="Steps">
      <h2>Steps</h2>
      <table className="grid compact">
        <thead>
          <tr>
            <th scope="col">Step</th>
            <th scope="col">Status</th>
            <th scope="col">Partitions</th>
            <th scope="col">MLflow</th>
          </tr>
        </thead>
        <tbody>
          {nodes.map((n) => (
            <tr key={n.nodeId}>
              <th scope="row">
                <button type="button" className="link" onClick={() => onSelect(n.nodeId)} aria-label={`Details of step ${n.nodeId}`}>
                  {n.nodeId}
                </button>
              </th>
              <td>
                <StatusBadge status={n.status} />
                {n.reusedFrom && (
                  <div className="muted small">
                    from <a href={href("runs", n.reusedFrom.runId)}>run {n.reusedFrom.runId}</a>
                  </div>
                )}
                {n.cachedFrom && (
                  <div className="muted small">
                    cached from <a href={href("runs", n.cachedFrom.runId)}>run {n.cachedFrom.runId}</a>
                  </div>
                )}
                {n.message && <div className="muted small">{n.message}</div>}
              </td>
              <td className="small">{partitionText(n)}</td>
              <td>
                {n.mlflowUrl ? (
                  <a href={n.mlflowUrl} target="_blank" rel="noreferrer" aria-label={`MLflow run of ${n.nodeId}`}>
                    run
                  </a>
                ) : (
                  "—"
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
