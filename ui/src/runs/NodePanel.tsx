/** One step of a run: status, attempt, times, MLflow link, message, and its failed partitions with their exit codes and stderr. */
import { isTerminalRun } from "../../../proto/status";
import { StatusBadge } from "../components/StatusBadge";
import { duration, localTime } from "../components/time";
import { type Run, useLiveNode } from "./poll";
import { partitionText } from "./RunGraph";

export function NodePanel({ run, nodeId, onClose }: { run: Run; nodeId: string; onClose: () => void }) {
  const detail = useLiveNode(run.id, nodeId, isTerminalRun(run.status)).value;
  const n = detail ?? run.nodes?.find((x) => x.nodeId === nodeId);
  return (
    <section className="panel" aria-label={`Step ${nodeId} of the run`}>
      <div className="panel-head">
        <h2>Step {nodeId}</h2>
        <button type="button" onClick={onClose}>
          All steps
        </button>
      </div>
      {!n ? (
        <p>Not part of this run.</p>
      ) : (
        <dl className="facts">
          <dt>Status</dt>
          <dd>
            <StatusBadge status={n.status} />
          </dd>
          <dt>Attempt</dt>
          <dd>{n.attempt}</dd>
          <dt>Partitions</dt>
          <dd>{partitionText(n)}</dd>
          <dt>Started</dt>
          <dd>{localTime(n.startedAt)}</dd>
          <dt>Duration</dt>
          <dd>{duration(n.startedAt, n.finishedAt)}</dd>
          <dt>MLflow</dt>
          <dd>
            {n.mlflowUrl ? (
              <a href={n.mlflowUrl} target="_blank" rel="noreferrer" aria-label={`MLflow run of ${nodeId}`}>
                run {n.mlflowRunId}
              </a>
            ) : (
              (n.mlflowRunId ?? "—")
            )}
          </dd>
          <dt>Message</dt>
          <dd>{n.message ?? "—"}</dd>
        </dl>
      )}
      {detail && detail.partitionFailures.length > 0 && (
        <>
          <h3>Failed partitions ({detail.failedPartitions})</h3>
          <ul className="failures">
            {detail.partitionFailures.map((f) => (
              <li key={`${f.index}`}>
                <strong>partition {f.index}</strong>: {f.exitCode === null ? "no exit code" : `exit code ${f.exitCode}`}
                {f.reason ? ` (${f.reason})` : ""}
                {f.stderr ? <pre>{f.stderr}</pre> : null}
              </li>
            ))}
          </ul>
        </>
      )}
    </section>
  );
}
