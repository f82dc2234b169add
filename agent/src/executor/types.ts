/**
 * The seam between the agent's core (NATS pull loop, event reporting) and what runs the work:
 * the local executor (processes on this machine) now, the Kubernetes executor (Indexed Jobs)
 * later. The core never knows how work runs; an executor never talks to NATS or the control plane.
 */
import type { AgentEvent } from "../../../proto/agent";
import type { WorkCancel, WorkStart } from "../../../proto/messages";

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
  state: "running" | "succeeded" | "failed" | "cancelled";
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
  /** After a restart: the attempts this executor knows of, so the core can re-attach reporters and re-report. */
  reconcile(reporterFor: (ref: AttemptRef) => AttemptReporter): Promise<RecoveredAttempt[]>;
  /** How many attempts are running now (heartbeats, metrics). */
  running(): number;
  /** Stop accepting work; running attempts keep running (they are reconciled after restart). */
  close(): Promise<void>;
}
