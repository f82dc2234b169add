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
import type { AttemptOutcome, TerminalRunStatus } from "../../../../proto/status";
import { localMachine } from "../../heartbeat";
import { KeyedLock } from "../../keyed-lock";
import type { AttemptRef, AttemptReporter, Executor, RecoveredAttempt } from "../types";
import { Attempt } from "./attempt";
import { RetryableStartError } from "../shared/errors";
import { pruneGitCache } from "../shared/git";
import { endParentRuns, endRun } from "../shared/mlflow-runs";
import { resolveOptions, type ExecutorContext, type LocalExecutorOptions } from "./options";
import { type AttemptRecord, AttemptStore, attemptKey, lockStateDir, TERMINAL_PHASES, failureFields } from "./state";

export { AttemptFailure, RetryableStartError, isRetryableStartError } from "../shared/errors";
export type { ExecutorLogger, LocalExecutorOptions } from "./options";
export { computeManifest, sliceFiles, fnv1a32, type Manifest, type PartitionSlice } from "../shared/manifest";
export { PARALLELS_TAGS } from "../shared/mlflow-runs";
export { OWN_ARTIFACTS } from "../shared/artifacts";

export interface LocalExecutor extends Executor {
  /** The executor's resolved settings (for logs and tests). */
  readonly context: Readonly<ExecutorContext>;
}

/** Throws when another live process holds the state dir (one agent per state dir). */
export function createLocalExecutor(options: LocalExecutorOptions): LocalExecutor {
  return new LocalExecutorImpl(resolveOptions(options));
}

/** How often a long-lived executor looks for ended attempts' records to delete. */
const PRUNE_EVERY_MS = 3600_000;

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
  /** start / cancel / pruning of one attempt run one at a time up to the point the attempt is registered. */
  private readonly attemptLock = new KeyedLock();
  private closed = false;
  private readonly unlock: () => void;
  /** Attempts inside a `start` call (the core counts those itself: see {@link running}). */
  private readonly inStart = new Map<string, number>();
  /** Experiments holding the parent run of each DAG run this executor worked on (from records). */
  private readonly runExperiments = new Map<string, Set<string>>();

  private readonly pruneTimer: ReturnType<typeof setInterval>;

  constructor(ctx: ExecutorContext) {
    this.context = ctx;
    this.unlock = lockStateDir(ctx.stateDir);
    this.store = new AttemptStore(ctx.stateDir);
    this.pruneTimer = setInterval(() => void this.pruneEndedRecords(), PRUNE_EVERY_MS);
    this.pruneTimer.unref();
  }

  /**
   * Deletes the records of attempts that ended, were reported, and have not changed for
   * `keepEndedRecordsMs`. Returns how many. Never throws (a failure is logged; the next run retries).
   */
  pruneEndedRecords(): Promise<number> {
    if (this.closed) return Promise.resolve(0);
    // One at a time; close() waits for it, so nothing is deleted after the state dir is released.
    this.pruning ??= this.prune().finally(() => (this.pruning = undefined));
    return this.pruning;
  }

  private pruning: Promise<number> | undefined;

  private async prune(): Promise<number> {
    const cutoff = this.context.now() - this.context.keepEndedRecordsMs;
    const expired = (rec: AttemptRecord | undefined) => rec !== undefined && TERMINAL_PHASES.has(rec.phase) && rec.finalReported === true && rec.updatedAt < cutoff;
    let removed = 0;
    try {
      for (const listed of await this.store.list()) {
        if (this.closed) break;
        if (!expired(listed)) continue;
        const key = attemptKey(listed.ref);
        // Decided again under the attempt's lock, on the record as it is now.
        const gone = await this.attemptLock.run(key, async () => {
          if (this.active.has(key) || !expired(await this.store.load(listed.ref))) return false;
          await this.store.remove(listed.ref);
          return true;
        });
        if (gone) removed++;
      }
    } catch (e) {
      this.context.log.warn({ err: e }, "could not prune the records of ended attempts");
    }
    if (removed > 0) this.context.log.info({ removed }, "pruned the records of ended attempts");
    await this.pruneCheckouts();
    return removed;
  }

  /** Git checkouts no attempt used for `keepUnusedCheckoutsMs`, except where steps still run. */
  private async pruneCheckouts(): Promise<void> {
    try {
      const inUse = new Set<string>();
      for (const a of this.active.values()) if (a.rec.project?.dir) inUse.add(a.rec.project.dir);
      for (const rec of await this.store.list()) if (!TERMINAL_PHASES.has(rec.phase) && rec.project?.dir) inUse.add(rec.project.dir);
      const gone = await pruneGitCache(this.context.gitCacheDir, this.context.now() - this.context.keepUnusedCheckoutsMs, inUse);
      if (gone.length > 0) this.context.log.info({ removed: gone.length }, "pruned unused git checkouts");
    } catch (e) {
      this.context.log.warn({ err: e }, "could not prune the git checkouts");
    }
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
    reporter.report(finalEvent(rec));
    rec.finalReported = true;
    await this.store.save(rec);
  }

  /**
   * Runs an adopted attempt's preparation (which goes on to run it). On a retryable failure the
   * attempt is dropped from `active`, so the next start picks up the record afresh.
   */
  private drive(attempt: Attempt, key: string): Promise<void> {
    return attempt.prepare().catch((e: unknown) => {
      if (this.active.get(key) === attempt) this.active.delete(key);
      void attempt.stop();
      throw e;
    });
  }

  async start(work: WorkStart, reporter: AttemptReporter): Promise<void> {
    const key = attemptKey(refOf(work));
    this.inStart.set(key, (this.inStart.get(key) ?? 0) + 1);
    try {
      await this.doStart(work, reporter);
    } finally {
      const n = (this.inStart.get(key) ?? 1) - 1;
      if (n > 0) this.inStart.set(key, n);
      else this.inStart.delete(key);
    }
  }

  private async doStart(work: WorkStart, reporter: AttemptReporter): Promise<void> {
    const ref = refOf(work);
    const key = attemptKey(ref);
    const attempt = await this.attemptLock.run(key, async () => {
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
      if (attempt.attempt.rec.phase === "preparing") {
        attempt.attempt.setReporter(reporter);
        return attempt.attempt.preparing ?? this.drive(attempt.attempt, key);
      }
      attempt.attempt.run();
      return;
    }
    await this.drive(attempt.attempt, key);
    this.experimentsOf(attempt.attempt.rec);
  }

  async abandon(work: WorkStart, message: string, reporter: AttemptReporter): Promise<void> {
    const ref = refOf(work);
    const key = attemptKey(ref);
    const waitFor = await this.attemptLock.run(key, async (): Promise<Promise<void> | undefined> => {
      const active = this.active.get(key);
      if (active) {
        // Being prepared (e.g. driven again after a restart): it ends failed at its next step.
        if (active.rec.phase === "preparing") {
          active.setReporter(reporter);
          await active.requestFail(message);
          return active.done;
        }
        return undefined; // running: it reports its own end
      }
      const rec = (await this.store.load(ref)) ?? {
        version: 1 as const,
        ref,
        work,
        phase: "preparing" as const,
        createdAt: this.context.now(),
        updatedAt: this.context.now(),
        dir: join(this.context.workDir, key),
      };
      if (TERMINAL_PHASES.has(rec.phase)) {
        await this.reportFinal(rec, reporter);
        return undefined;
      }
      if (rec.phase !== "preparing") {
        if (!rec.work) rec.work = work;
        this.adopt(rec, reporter).run(); // durably started before: let it run to its end
        return undefined;
      }
      await this.failPreparing(rec, message, reporter);
      return undefined;
    });
    await waitFor;
  }

  /** Ends a record that never got past preparation as failed (and its MLflow run, if one was made). */
  private async failPreparing(rec: AttemptRecord, message: string, reporter: AttemptReporter): Promise<void> {
    const now = this.context.now();
    rec.phase = "failed";
    rec.message = message;
    rec.updatedAt = now;
    await this.store.save(rec);
    if (rec.mlflow?.nodeRunId) {
      await endRun(this.context.mlflow, rec.mlflow.nodeRunId, "FAILED", now).catch((e: unknown) => {
        this.context.log.warn({ err: e, nodeRunId: rec.ref.nodeRunId }, "could not mark the MLflow run FAILED");
      });
    }
    await this.reportFinal(rec, reporter);
    this.context.log.warn({ nodeRunId: rec.ref.nodeRunId, attempt: rec.ref.attempt, message }, "attempt failed before it started");
  }

  async cancel(work: WorkCancel, reporter: AttemptReporter): Promise<void> {
    const ref = refOf(work);
    const key = attemptKey(ref);
    const target = await this.attemptLock.run(key, async () => {
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
    // A preparation that gave up (retryably) just before it saw the cancel: it is no longer
    // driven, so the cancel ends the record here (and reports `cancelled`).
    if (!target.terminal && target.rec.phase === "preparing" && !this.closed && this.active.get(key) !== target) await this.cancel(work, reporter);
  }

  private experimentsOf(rec: AttemptRecord): void {
    if (!rec.mlflow || rec.work?.mlflowParentRunId) return; // a parent given by the control plane is not ours
    let set = this.runExperiments.get(rec.ref.runId);
    if (!set) {
      set = new Set();
      this.runExperiments.set(rec.ref.runId, set);
    }
    set.add(rec.mlflow.experimentId);
  }

  async runEnded(runId: string, status: TerminalRunStatus): Promise<void> {
    const log = this.context.log;
    // Which experiments hold the run's parent: from the attempts here (records outlive a restart).
    for (const a of this.active.values()) if (a.rec.ref.runId === runId) this.experimentsOf(a.rec);
    if (!this.runExperiments.has(runId)) for (const rec of await this.store.list()) if (rec.ref.runId === runId) this.experimentsOf(rec);
    const experiments = [...(this.runExperiments.get(runId) ?? [])];
    if (experiments.length === 0) {
      log.info({ runId, status }, "DAG run ended; no MLflow parent run of it is known here");
      return;
    }
    // MLflow unreachable: the rejection makes the core try again later (the run's end is kept on disk).
    const ended = await endParentRuns(this.context.mlflow, experiments, runId, status, this.context.now());
    this.runExperiments.delete(runId);
    log.info({ runId, status, parentRuns: ended }, ended.length > 0 ? "DAG run ended; its MLflow parent run is closed" : "DAG run ended; its MLflow parent run was already closed");
  }

  async reconcile(reporterFor: (ref: AttemptRef) => AttemptReporter): Promise<RecoveredAttempt[]> {
    const out: RecoveredAttempt[] = [];
    for (const rec of await this.store.list()) {
      const key = attemptKey(rec.ref);
      this.experimentsOf(rec);
      if (this.active.has(key)) {
        if (this.active.get(key)!.rec.phase !== "preparing") out.push({ ...rec.ref, state: "running" });
        continue;
      }
      if (TERMINAL_PHASES.has(rec.phase)) {
        // Ended while the agent was away (or its report may not have gone out): the core re-reports it.
        if (!rec.finalReported) {
          out.push(recovered(rec));
          rec.finalReported = true;
          await this.store.save(rec);
        }
        continue;
      }
      if (rec.phase === "preparing") {
        if (!rec.work) {
          // Cannot happen (tombstones are written cancelled); nothing to prepare from.
          rec.phase = "failed";
          rec.message = "the agent restarted while the attempt was being prepared, and its work message was not recorded";
          rec.finalReported = true;
          await this.store.save(rec);
          out.push(recovered(rec));
          continue;
        }
        // Not durably started, so not running: prepare it again in the background. Its start
        // message was never acked, so a redelivery joins this (or takes over if it failed).
        await this.attemptLock.run(key, async () => {
          if (this.active.has(key)) return;
          const a = this.adopt(rec, reporterFor(rec.ref));
          this.drive(a, key).catch((e: unknown) => {
            this.context.log.warn({ err: e, nodeRunId: rec.ref.nodeRunId, attempt: rec.ref.attempt }, "preparing the attempt again after a restart failed; its redelivered start retries");
          });
        });
        continue;
      }
      if (!rec.work) continue; // not terminal and no work: never written so (defensive)
      await this.attemptLock.run(key, async () => {
        if (!this.active.has(key)) this.adopt(rec, reporterFor(rec.ref)).run();
      });
      out.push({ ...rec.ref, state: "running" });
    }
    await this.pruneEndedRecords();
    return out;
  }

  /** The heartbeat's view: this machine, and with `--containers` what builds its images. */
  describe(): ReturnType<typeof localMachine> & { builder: string | null } {
    const c = this.context.containers;
    return { ...localMachine(), builder: c ? `${c.service.builder.description} (images in ${c.service.store.description}; steps run with podman)` : null };
  }

  running(): number {
    let n = 0;
    for (const [key, a] of this.active) if (!a.terminal && !this.inStart.has(key)) n++;
    return n;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.pruneTimer);
    await this.pruning;
    await Promise.all([...this.active.values()].map((a) => a.stop()));
    this.active.clear();
    this.unlock();
  }
}

/** The terminal event of an ended record. */
function finalEvent(rec: AttemptRecord): Parameters<AttemptReporter["report"]>[0] {
  const event: Parameters<AttemptReporter["report"]>[0] = { type: rec.phase as AttemptOutcome };
  if (rec.mlflow?.nodeRunId) event.mlflowRunId = rec.mlflow.nodeRunId;
  if (rec.phase === "failed" && rec.message) event.message = rec.message.slice(0, 4000);
  if (rec.phase === "failed") Object.assign(event, failureFields(rec));
  if (rec.phase === "succeeded" && rec.cachedFrom) event.cachedFrom = rec.cachedFrom;
  return event;
}

/** An ended record as the core re-reports it after a restart. */
function recovered(rec: AttemptRecord): RecoveredAttempt {
  const e = finalEvent(rec);
  const out: RecoveredAttempt = { ...rec.ref, state: rec.phase as RecoveredAttempt["state"] };
  if (e.mlflowRunId) out.mlflowRunId = e.mlflowRunId;
  if (e.message) out.message = e.message;
  if (e.counts) out.counts = e.counts;
  if (e.cachedFrom) out.cachedFrom = e.cachedFrom;
  if (rec.phase === "failed") {
    const { counts: _, ...failure } = failureFields(rec);
    if (Object.keys(failure).length > 0) out.failure = failure;
  }
  return out;
}
