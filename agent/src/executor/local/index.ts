/**
 * @module
 * The local executor: runs node attempts as processes on this machine (the embedded default).
 * Fetches the project (local path or git clone), renders the entry point with the MLproject
 * engine, creates the MLflow runs (DAG parent, node attempt, one per partition), downloads the
 * inputs, computes the partition manifest and runs each partition through `bash -c` in the
 * current Python environment, at most `parallelism` at once per node and `maxProcesses` overall.
 * Processes are detached and their state kept in `stateDir`, so they survive the agent and a
 * new executor re-attaches to them (`reconcile`).
 *
 * @example
 * ```ts
 * const executor = createLocalExecutor({
 *   stateDir: ".state/agent",
 *   trackingUri: "http://127.0.0.1:5000",
 *   projectsRoot: "examples/wordcount",
 *   pythonBinDir: ".state/venv/bin",
 * });
 * await executor.reconcile((ref) => reporterFor(ref));
 * await executor.start(work, { report: (e) => queue.push(work, e) });
 * ```
 */
import { join } from "node:path";
import type { WorkCancel, WorkStart } from "../../../../proto/messages";
import type { AttemptRef, AttemptReporter, Executor, RecoveredAttempt } from "../types";
import { Attempt } from "./attempt";
import { RetryableStartError } from "./errors";
import { endRun } from "./mlflow-runs";
import { resolveOptions, type ExecutorContext, type LocalExecutorOptions } from "./options";
import { type AttemptRecord, AttemptStore, attemptKey, lockStateDir, TERMINAL_PHASES } from "./state";

export { AttemptFailure, RetryableStartError, isRetryableStartError } from "./errors";
export type { ExecutorLogger, LocalExecutorOptions } from "./options";
export { computeManifest, sliceFiles, fnv1a32, type Manifest, type PartitionSlice } from "./manifest";
export { PARALLELS_TAGS } from "./mlflow-runs";
export { OWN_ARTIFACTS } from "./artifacts";

export interface LocalExecutor extends Executor {
  /** The executor's resolved settings (for logs and tests). */
  readonly context: Readonly<ExecutorContext>;
}

/** Throws when another live process holds the state dir (one agent per state dir). */
export function createLocalExecutor(options: LocalExecutorOptions): LocalExecutor {
  return new LocalExecutorImpl(resolveOptions(options));
}

const refOf = (w: { runId: string; nodeRunId: string; nodeId: string; attempt: number }): AttemptRef => ({
  runId: w.runId,
  nodeRunId: w.nodeRunId,
  nodeId: w.nodeId,
  attempt: w.attempt,
});

class LocalExecutorImpl implements LocalExecutor {
  readonly context: ExecutorContext;
  private readonly store: AttemptStore;
  private readonly active = new Map<string, Attempt>();
  /** start / cancel of one attempt run one at a time up to the point the attempt is registered. */
  private readonly locks = new Map<string, Promise<unknown>>();
  private closed = false;
  private readonly unlock: () => void;

  constructor(ctx: ExecutorContext) {
    this.context = ctx;
    this.unlock = lockStateDir(ctx.stateDir);
    this.store = new AttemptStore(ctx.stateDir);
  }

  private withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.locks.set(key, tail);
    void tail.then(() => {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    });
    return next;
  }

  private adopt(rec: AttemptRecord, reporter: AttemptReporter): Attempt {
    const a = new Attempt(this.context, this.store, rec, reporter);
    const key = attemptKey(rec.ref);
    this.active.set(key, a);
    void a.done.then(() => {
      if (this.active.get(key) === a && a.terminal) this.active.delete(key);
    });
    return a;
  }

  /** Report the terminal event of a record whose report may not have gone out. */
  private async reportFinal(rec: AttemptRecord, reporter: AttemptReporter): Promise<void> {
    if (rec.finalReported || !TERMINAL_PHASES.has(rec.phase)) return;
    const event: Parameters<AttemptReporter["report"]>[0] = { type: rec.phase as "succeeded" | "failed" | "cancelled" };
    if (rec.mlflow?.nodeRunId) event.mlflowRunId = rec.mlflow.nodeRunId;
    if (rec.phase === "failed" && rec.message) event.message = rec.message.slice(0, 4000);
    reporter.report(event);
    rec.finalReported = true;
    await this.store.save(rec);
  }

  async start(work: WorkStart, reporter: AttemptReporter): Promise<void> {
    const ref = refOf(work);
    const key = attemptKey(ref);
    const attempt = await this.withLock(key, async () => {
      if (this.closed) throw new RetryableStartError("the executor is closed");
      const running = this.active.get(key);
      if (running) return { attempt: running, fresh: false };
      const rec = await this.store.load(ref);
      if (rec) {
        if (TERMINAL_PHASES.has(rec.phase)) {
          await this.reportFinal(rec, reporter); // a start after a cancel, or a redelivery: nothing to run
          return undefined;
        }
        if (!rec.work) rec.work = work; // a tombstone being cancelled: keep the work for the record
        return { attempt: this.adopt(rec, reporter), fresh: rec.phase === "preparing" };
      }
      const now = this.context.now();
      const fresh: AttemptRecord = {
        version: 1,
        ref,
        work,
        phase: "preparing",
        createdAt: now,
        updatedAt: now,
        dir: join(this.context.workDir, key),
      };
      await this.store.save(fresh);
      return { attempt: this.adopt(fresh, reporter), fresh: true };
    });
    if (!attempt) return;
    if (!attempt.fresh) {
      // Already known: a redelivery. One still preparing: wait for the same outcome (the message
      // must not be acked before the attempt is durably started). Running ones keep running.
      if (attempt.attempt.preparing && attempt.attempt.rec.phase === "preparing") return attempt.attempt.preparing;
      attempt.attempt.run();
      return;
    }
    try {
      await attempt.attempt.prepare();
    } catch (e) {
      if (this.active.get(key) === attempt.attempt) this.active.delete(key); // the next start picks up the record
      void attempt.attempt.stop();
      throw e;
    }
  }

  async cancel(work: WorkCancel, reporter: AttemptReporter): Promise<void> {
    const ref = refOf(work);
    const key = attemptKey(ref);
    const target = await this.withLock(key, async () => {
      const running = this.active.get(key);
      if (running) return running;
      const rec = await this.store.load(ref);
      if (rec && TERMINAL_PHASES.has(rec.phase)) return undefined;
      if (rec?.work && rec.phase !== "preparing") return this.adopt(rec, reporter);
      // Unknown, or never got past preparation here: remember the cancel so a late start does nothing.
      const now = this.context.now();
      const tomb: AttemptRecord = {
        ...(rec ?? { version: 1 as const, ref, createdAt: now, dir: join(this.context.workDir, key) }),
        phase: "cancelled",
        cancelRequested: true,
        updatedAt: now,
        message: "cancelled before it started",
      };
      await this.store.save(tomb);
      if (rec?.mlflow?.nodeRunId) {
        // A preparation that stopped half-way (MLflow trouble) may have created the run already.
        await endRun(this.context.mlflow, rec.mlflow.nodeRunId, "KILLED", now).catch((e: unknown) => {
          this.context.log.warn({ err: e, nodeRunId: ref.nodeRunId }, "could not mark the MLflow run KILLED");
        });
      }
      reporter.report({ type: "cancelled", message: "cancelled before it started" });
      tomb.finalReported = true;
      await this.store.save(tomb);
      return undefined;
    });
    if (!target) return;
    target.setReporter(reporter);
    await target.requestCancel();
    target.run(); // drives a recovered attempt; no-op for one already running
    await target.done;
  }

  async reconcile(reporterFor: (ref: AttemptRef) => AttemptReporter): Promise<RecoveredAttempt[]> {
    const out: RecoveredAttempt[] = [];
    for (const rec of await this.store.list()) {
      const key = attemptKey(rec.ref);
      if (this.active.has(key)) {
        out.push({ ...rec.ref, state: "running" });
        continue;
      }
      if (TERMINAL_PHASES.has(rec.phase)) {
        if (!rec.finalReported) {
          await this.reportFinal(rec, reporterFor(rec.ref));
          out.push({ ...rec.ref, state: rec.phase as RecoveredAttempt["state"] });
        }
        continue;
      }
      // Preparing: its NATS message was never acked, so it comes back and `start` continues it.
      if (rec.phase === "preparing" || !rec.work) {
        out.push({ ...rec.ref, state: "running" });
        continue;
      }
      await this.withLock(key, async () => {
        if (!this.active.has(key)) this.adopt(rec, reporterFor(rec.ref)).run();
      });
      out.push({ ...rec.ref, state: "running" });
    }
    return out;
  }

  running(): number {
    let n = 0;
    for (const a of this.active.values()) if (!a.terminal) n++;
    return n;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.active.values()].map((a) => a.stop()));
    this.active.clear();
    this.unlock();
  }
}
