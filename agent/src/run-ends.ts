/**
 * DAG runs the control plane said are over, kept on disk until the executor has closed what it
 * keeps for each (the MLflow parent run). The answer to an events batch is the only place the
 * agent learns that a run ended; the batch leaves the event journal right after, so without
 * this record an agent killed between that answer and the close would never close the parent.
 * Order: {@link RunEnds.add} writes (atomically) *before* the batch leaves the journal, and an
 * entry is removed only once the executor's `runEnded` succeeded — every crash point leaves
 * either the events to re-send (the control plane then names the run again) or this record.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { EventBatchResult } from "../../proto/agent";
import { Backoff, realSleep, type Sleep } from "./backoff";
import { errInfo, type Logger } from "./log";

export const RUN_ENDS_FILE = "run-ends.json";

export type RunEnd = EventBatchResult["endedRuns"][number];
const RunEndsFile = z.object({ runEnds: EventBatchResult.shape.endedRuns });

export class RunEnds {
  private readonly path: string;
  private readonly pending = new Map<string, RunEnd>();
  private wake: (() => void) | null = null;

  constructor(
    stateDir: string,
    private readonly logger: Logger,
  ) {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    this.path = join(stateDir, RUN_ENDS_FILE);
    for (const r of this.load()) this.pending.set(r.runId, r);
  }

  /** Runs waiting to be closed. */
  get size(): number {
    return this.pending.size;
  }

  /** Records run ends durably (throws when it cannot write: the caller then keeps the events that told it). */
  add(runs: RunEnd[]): void {
    let changed = false;
    for (const r of runs) {
      if (this.pending.get(r.runId)?.status === r.status) continue;
      this.pending.set(r.runId, r);
      changed = true;
    }
    if (changed) this.save();
    this.wake?.();
  }

  /**
   * Closes each recorded run with `close` (the executor's `runEnded`), removing it once `close`
   * resolved; a rejection keeps it and retries with back-off. Runs until `signal` aborts.
   */
  async run(close: (r: RunEnd) => Promise<void>, signal: AbortSignal, sleep: Sleep = realSleep): Promise<void> {
    const backoff = new Backoff({ initialMs: 1000, maxMs: 60_000 });
    while (!signal.aborted) {
      let failed = false;
      for (const r of [...this.pending.values()]) {
        if (signal.aborted) return;
        try {
          await close(r);
          if (this.pending.get(r.runId) === r) {
            this.pending.delete(r.runId);
            this.save();
          }
        } catch (err) {
          failed = true;
          this.logger.warn({ err: errInfo(err), runId: r.runId, status: r.status }, "could not close what is kept for an ended DAG run (its MLflow parent run); retrying");
        }
      }
      if (failed) await sleep(backoff.next(), signal);
      else {
        backoff.reset();
        if (this.pending.size === 0 && !signal.aborted) await this.added(signal);
      }
    }
  }

  /** Resolves when a run is added (or `signal` aborts). */
  private added(signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        this.wake = null;
        signal.removeEventListener("abort", done);
        resolve();
      };
      this.wake = done;
      signal.addEventListener("abort", done, { once: true });
    });
  }

  private save(): void {
    const tmp = `${this.path}.tmp`;
    writeFileSync(tmp, JSON.stringify({ runEnds: [...this.pending.values()] }), { mode: 0o600 });
    renameSync(tmp, this.path);
  }

  private load(): RunEnd[] {
    let text: string;
    try {
      text = readFileSync(this.path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw err;
    }
    const parsed = RunEndsFile.safeParse(JSON.parse(text));
    if (!parsed.success) throw new Error(`${this.path} is not a run-ends record: ${parsed.error.issues[0]?.message}`);
    if (parsed.data.runEnds.length > 0) this.logger.info({ runs: parsed.data.runEnds.length }, "DAG runs that ended before the restart are closed now");
    return parsed.data.runEnds;
  }
}
