/**
 * The seam between the agent's core (NATS pull loop, event reporting) and what runs the work:
 * the local executor (processes on this machine) now, the Kubernetes executor (Indexed Jobs)
 * later. The core never knows how work runs; an executor never talks to NATS or the control plane.
 */
import type { AgentEvent, CacheLookup, CacheLookupAnswer, Heartbeat } from "../../../proto/agent";
import type { WorkCancel, WorkStart } from "../../../proto/messages";
import type { AttemptOutcome, TerminalRunStatus } from "../../../proto/status";

/**
 * Asks the control plane whether a node run with this cache key succeeded in the workspace (the
 * one call an executor makes to it: the key needs the prepared inputs, and the answer decides
 * whether anything runs). Rejects when the control plane cannot be asked; the executor then runs
 * the step (a miss costs time, never a wrong result).
 */
export type CacheLookupFn = (ask: CacheLookup) => Promise<CacheLookupAnswer["hit"]>;

/** What an executor reports about one attempt; the core adds nodeRunId, attempt, seq and time. */
export type AttemptReport = Omit<AgentEvent, "nodeRunId" | "attempt" | "seq" | "at">;

/** Where an executor sends the reports of one attempt. Never throws; reports are queued durably by the core. */
export interface AttemptReporter {
  report(event: AttemptReport): void;
}

export interface AttemptRef {
  runId: string;
  nodeRunId: string;
  nodeId: string;
  attempt: number;
}

/** An attempt the executor found running (or finished but not yet reported) after a restart. */
export interface RecoveredAttempt extends AttemptRef {
  state: "running" | AttemptOutcome;
  /** What the re-reported event says (e.g. why it failed); the core says "re-reported after an agent restart" without. */
  message?: string;
  mlflowRunId?: string;
  counts?: AttemptReport["counts"];
  /** A cache hit (no step ran): the node run whose result it is. */
  cachedFrom?: AttemptReport["cachedFrom"];
  /** A failed attempt's partitions that failed (while others succeeded), why, and whether a retry can help. */
  failure?: Pick<AttemptReport, "failedPartitions" | "partitionFailures" | "final">;
}

export interface Executor {
  /**
   * Starts an attempt and resolves once it is durably started (its processes spawned and their
   * state recorded, or its Job created) — the core acks the NATS message only then. Idempotent:
   * starting an attempt that is already running or finished does nothing (it may re-report).
   * Rejects only when the work could not be started at all; the attempt then has been reported
   * `failed` with a message, or the rejection is retryable (the core lets NATS redeliver).
   */
  start(work: WorkStart, reporter: AttemptReporter): Promise<void>;
  /** Stops an attempt's processes (or deletes its Job) and reports `cancelled`. Idempotent; an unknown attempt is remembered so a late `start` of it does nothing. */
  cancel(work: WorkCancel, reporter: AttemptReporter): Promise<void>;
  /**
   * The core gives up on starting an attempt: its start was retried until the consumer's
   * `max_deliver`, and the message is terminated. The executor records the attempt as failed
   * with `message` (so nothing starts it later, also not after a restart), ends what it made
   * for it, and reports `failed` — or the attempt's real end if it has one. Optional: without
   * it the core reports `failed` itself.
   */
  abandon?(work: WorkStart, message: string, reporter: AttemptReporter): Promise<void>;
  /**
   * After a restart: the attempts this executor knows of, so the core can re-attach reporters
   * and re-report them (the core is the one place that re-reports; `reconcile` itself reports
   * nothing). Attempts still being prepared are not listed as running: the executor drives their
   * preparation again (or lists them failed).
   */
  reconcile(reporterFor: (ref: AttemptRef) => AttemptReporter): Promise<RecoveredAttempt[]>;
  /**
   * The control plane says a DAG run is over (it alone knows: nodes may run on other clusters).
   * Closes what the executor keeps per DAG run — the MLflow parent run — with that status, and
   * resolves once that is done (or there is nothing to close). Rejects when it could not (MLflow
   * unreachable): the core keeps the run's end on disk and calls again later, also after a
   * restart. Idempotent.
   */
  runEnded(runId: string, status: TerminalRunStatus): Promise<void>;
  /**
   * How many attempts are running now (heartbeats, metrics, `--max-concurrent-attempts`),
   * including attempts being prepared — except those whose `start` call is still in progress:
   * the core counts those itself.
   */
  running(): number;
  /** Stop accepting work; running attempts keep running (they are reconciled after restart). */
  close(): Promise<void>;
  /** What the heartbeat says of the machine or cluster (Kubernetes version, allocatable resources); default: this machine. */
  describe?(): Pick<Heartbeat, "kubernetesVersion" | "allocatable"> & Partial<Pick<Heartbeat, "builder">>;
}
