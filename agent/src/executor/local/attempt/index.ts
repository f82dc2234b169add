/**
 * @module
 * One node attempt on this machine, wired from three parts with one job each: `prepareAttempt`
 * (project, MLflow runs, inputs, command, manifest), the {@link Supervisor} (partition processes,
 * progress, logs) and `finishAttempt` (outputs, MLflow statuses, the final report). The class
 * holds what they share (the record, the reporter) and runs one loop that owns every change of
 * the attempt's state after preparation. Every change is written to the attempt's record before
 * it is acted on where a crash could otherwise lose it, so a new executor over the same state dir
 * carries on.
 */
import type { AttemptOutcome } from "../../../../../proto/status";
import type { AttemptReport, AttemptReporter } from "../../types";
import { RetryableStartError, errMessage } from "../../shared/errors";
import type { ExecutorContext } from "../options";
import { type AttemptRecord, type AttemptStore, type PartitionRecord, TERMINAL_PHASES } from "../state";
import { finishAttempt } from "./finish";
import { endOfFailedPreparation, prepareAttempt } from "./prepare";
import type { AttemptScope } from "./scope";
import { Supervisor } from "./supervise";

export class Attempt implements AttemptScope {
  readonly rec: AttemptRecord;
  private reporter: AttemptReporter;
  private readonly supervisor: Supervisor;
  private wakeUp: (() => void) | undefined;
  /** A wake-up came while a step ran (a process exited meanwhile): the next step follows without the poll's wait. */
  private wokenDuringStep = false;
  private loopPromise: Promise<void> | undefined;
  private stopped = false;
  private lastCounts = "";
  private readonly unsubscribe: () => void;
  /** Resolves when the attempt reached a terminal phase (or the executor closed). */
  readonly done: Promise<void>;
  private resolveDone!: () => void;

  constructor(
    readonly ctx: ExecutorContext,
    private readonly store: AttemptStore,
    rec: AttemptRecord,
    reporter: AttemptReporter,
  ) {
    this.rec = rec;
    this.reporter = reporter;
    this.done = new Promise((r) => (this.resolveDone = r));
    this.supervisor = new Supervisor(this);
    this.unsubscribe = ctx.slots.onRelease(() => this.wake());
  }

  get terminal(): boolean {
    return TERMINAL_PHASES.has(this.rec.phase);
  }

  save(): Promise<void> {
    this.rec.updatedAt = this.ctx.now();
    return this.store.save(this.rec);
  }

  savePartitions(partitions: readonly PartitionRecord[]): Promise<void> {
    return this.store.savePartitions(this.rec, partitions);
  }

  report(event: AttemptReport): void {
    // Until `running` is out, events carry the node's MLflow run and the DAG run's parent (the
    // control plane shows both; it keeps the first parent it hears of).
    if (!this.rec.runningReported && this.rec.mlflow?.nodeRunId) {
      event.mlflowRunId = this.rec.mlflow.nodeRunId;
      event.mlflowParentRunId = this.rec.mlflow.parentRunId;
    }
    if (event.counts) this.lastCounts = JSON.stringify(event.counts);
    try {
      this.reporter.report(event);
    } catch (e) {
      this.ctx.log.error({ err: e, attempt: this.rec.ref }, "reporter threw");
    }
  }

  get reportedCounts(): string {
    return this.lastCounts;
  }

  logCtx(extra: object = {}): object {
    return { nodeRunId: this.rec.ref.nodeRunId, attempt: this.rec.ref.attempt, nodeId: this.rec.ref.nodeId, ...extra };
  }

  /**
   * Everything before the first process: resolves once the attempt is durably running (or has
   * ended: failed, cancelled). Rejects with RetryableStartError when MLflow (or the disk) is not
   * ready; the record keeps what was done, and the next start continues from there.
   */
  prepare(): Promise<void> {
    this.preparing ??= this.prepareThenRun();
    return this.preparing;
  }

  /** While preparation runs: its promise (a redelivered start waits for the same outcome). */
  preparing: Promise<void> | undefined;

  private async prepareThenRun(): Promise<void> {
    let cached = false;
    try {
      cached = (await prepareAttempt(this)) === "cached";
    } catch (e) {
      const end = endOfFailedPreparation(this.rec, e);
      if (end) {
        if (end !== "cancelled") this.rec.message = end.message;
        // Ending the MLflow run may fail too (MLflow down): the loop then retries it.
        return this.finish(end === "cancelled" ? "cancelled" : "failed").catch((err: unknown) => {
          this.ctx.log.warn(this.logCtx({ err }), "could not end the attempt yet; retrying");
          this.run();
        });
      }
      this.ctx.log.warn(this.logCtx({ err: e }), "attempt preparation failed; it will be retried");
      throw new RetryableStartError(`could not start ${this.rec.ref.nodeId} attempt ${this.rec.ref.attempt}: ${errMessage(e)}`, { cause: e });
    }
    // A cache hit: nothing runs, the attempt ends succeeded (finishAttempt says where from); an
    // end that fails (MLflow down) is carried on by the loop, as above.
    if (cached) {
      return this.finish("succeeded").catch((err: unknown) => {
        this.ctx.log.warn(this.logCtx({ err }), "could not end the attempt yet; retrying");
        this.run();
      });
    }
    this.run();
  }

  /** Drive the attempt to its end in the background (also after a restart). */
  run(): void {
    // Preparation starts the loop itself when it is done (or ends the attempt).
    if (this.rec.phase === "preparing") return;
    if (this.loopPromise || this.terminal) {
      if (this.terminal) this.resolveDone();
      return;
    }
    this.supervisor.holdSlotsOfRunning();
    this.loopPromise = this.loop().catch((e: unknown) => {
      this.ctx.log.error(this.logCtx({ err: e }), "attempt loop crashed");
    });
  }

  wake(): void {
    const w = this.wakeUp;
    this.wakeUp = undefined;
    if (w) w();
    else this.wokenDuringStep = true;
  }

  private async loop(): Promise<void> {
    while (!this.stopped && !this.terminal) {
      try {
        // An end that was interrupted is carried on with the outcome it had.
        if (this.rec.phase === "finishing") await this.finish(this.rec.outcome ?? "failed");
        else {
          const outcome = await this.supervisor.step();
          if (outcome) await this.finish(outcome);
        }
      } catch (e) {
        this.ctx.log.warn(this.logCtx({ err: e }), "attempt step failed; retrying");
      }
      if (this.stopped || this.terminal) break;
      // Lost wake-ups cost a whole poll interval each: at thousands of short partitions, most of the time.
      if (this.wokenDuringStep) {
        this.wokenDuringStep = false;
        continue;
      }
      await new Promise<void>((r) => {
        this.wakeUp = r;
        void this.ctx.sleep(this.ctx.pollMs).then(r);
      });
    }
    this.unsubscribe();
    this.resolveDone();
  }

  /** Stop driving (executor closing); processes keep running and are reconciled later. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake();
    await this.loopPromise;
    this.unsubscribe();
    this.resolveDone();
  }

  /** The core gave up on starting this attempt: preparation ends it failed with `message` at its next step. */
  requestFail(message: string): Promise<void> {
    this.rec.failRequested = message;
    const saved = this.save();
    this.wake();
    return saved;
  }

  requestCancel(): Promise<void> {
    this.rec.cancelRequested = true;
    const saved = this.save();
    this.wake();
    return saved;
  }

  setReporter(r: AttemptReporter): void {
    this.reporter = r;
  }

  private async finish(outcome: AttemptOutcome): Promise<void> {
    await finishAttempt(this, outcome, () => {
      this.supervisor.releaseAll();
      this.unsubscribe(); // also when it ended in preparation (no loop ran)
    });
    this.resolveDone();
  }
}
