/**
 * What the NATS pull loop calls for each work message (ARC's `Scaler`): start or cancel an
 * attempt on the executor. Here live the rules that do not depend on NATS:
 *
 * - at most `maxConcurrent` attempts run; a start beyond that waits (its message keeps getting
 *   in-progress acks from the pull loop) until one finishes;
 * - a start delivered again while the first delivery is still being handled joins it; once
 *   started, a redelivered start is the executor's no-op;
 * - a cancel for a start still waiting for room releases it without starting;
 * - `accepted` is reported when a start arrives.
 */
import type { WorkCancel, WorkStart } from "../../proto/messages";
import { realSleep, type Sleep } from "./backoff";
import type { AttemptRef, AttemptReporter, Executor } from "./executor/types";
import { errInfo, type Logger } from "./log";

export interface WorkHandler {
  /** Resolves once the attempt is durably started, or needs nothing (the message is acked then); rejects: retry later. */
  handleStart(work: WorkStart, signal: AbortSignal): Promise<void>;
  /** Resolves once the attempt is cancelled (acked then); rejects: retry later. */
  handleCancel(work: WorkCancel): Promise<void>;
  /**
   * The start's message will not be delivered again (it was the consumer's `max_deliver`-th
   * delivery, or it is being terminated): the attempt is recorded and reported `failed` with
   * `message`. Never rejects.
   */
  giveUpStart(work: WorkStart, message: string): Promise<void>;
  /** A start message that cannot be read but names its attempt: reported `failed` with `message`. */
  reportUnreadable(ref: AttemptRef, message: string): void;
}

export class ShuttingDown extends Error {
  constructor() {
    super("the agent is shutting down; the work goes back to NATS");
    this.name = "ShuttingDown";
  }
}

export interface WorkHandlerOptions {
  executor: Executor;
  reporterFor: (ref: AttemptRef) => AttemptReporter;
  maxConcurrent: number;
  logger: Logger;
  /** How often a waiting start re-checks for room, besides being woken (default 1 s). */
  pollMs?: number;
  sleep?: Sleep;
}

export const attemptKey = (w: { nodeRunId: string; attempt: number }) => `${w.nodeRunId}#${w.attempt}`;
export const refOf = (w: WorkStart | WorkCancel): AttemptRef => ({ runId: w.runId, nodeRunId: w.nodeRunId, nodeId: w.nodeId, attempt: w.attempt });

export function createWorkHandler(o: WorkHandlerOptions): WorkHandler & { wake(): void; waiting(): number } {
  const sleep = o.sleep ?? realSleep;
  const inFlight = new Map<string, Promise<void>>();
  const waiting = new Set<string>();
  const cancelledWhileWaiting = new Set<string>();
  let starting = 0;
  let wakers: (() => void)[] = [];

  const wake = () => {
    const list = wakers;
    wakers = [];
    for (const w of list) w();
  };
  // `running()` leaves out the attempts inside a `start` call (the executor's contract): those
  // are `starting`, so an attempt in preparation counts once, and N attempts can prepare at once.
  const hasRoom = () => starting + o.executor.running() < o.maxConcurrent;

  /** Waits for room and takes it: on "go", `starting` already counts this start (taken in the same step as the check). */
  async function waitForRoom(key: string, signal: AbortSignal): Promise<"go" | "cancelled"> {
    const take = () => {
      if (!hasRoom()) return false;
      starting++;
      return true;
    };
    if (take()) return "go";
    waiting.add(key);
    o.logger.info({ attempt: key, running: o.executor.running(), max: o.maxConcurrent }, "at capacity; the start waits for room");
    try {
      for (;;) {
        if (signal.aborted) throw new ShuttingDown();
        if (cancelledWhileWaiting.delete(key)) return "cancelled";
        if (take()) return "go";
        const stop = new AbortController();
        let waker!: () => void;
        const woken = new Promise<void>((r) => {
          waker = r;
          wakers.push(r);
        });
        await Promise.race([woken, sleep(o.pollMs ?? 1000, AbortSignal.any([signal, stop.signal]))]);
        stop.abort();
        wakers = wakers.filter((w) => w !== waker);
      }
    } finally {
      waiting.delete(key);
    }
  }

  async function start(work: WorkStart, signal: AbortSignal): Promise<void> {
    const key = attemptKey(work);
    const reporter = o.reporterFor(refOf(work));
    reporter.report({ type: "accepted" });
    if ((await waitForRoom(key, signal)) === "cancelled") {
      o.logger.info({ attempt: key }, "cancelled before it started");
      return;
    }
    try {
      await o.executor.start(work, reporter);
      o.logger.info({ runId: work.runId, nodeId: work.nodeId, attempt: key }, "the executor has the attempt (started now or before)");
    } finally {
      starting--;
      wake();
    }
  }

  return {
    handleStart(work, signal) {
      const key = attemptKey(work);
      const current = inFlight.get(key);
      if (current) {
        o.logger.debug({ attempt: key }, "start delivered again while being handled; joining");
        return current;
      }
      const p = start(work, signal).finally(() => inFlight.delete(key));
      inFlight.set(key, p);
      return p;
    },
    async handleCancel(work) {
      const key = attemptKey(work);
      if (waiting.has(key)) {
        cancelledWhileWaiting.add(key);
        wake();
      }
      await o.executor.cancel(work, o.reporterFor(refOf(work)));
      o.logger.info({ runId: work.runId, nodeId: work.nodeId, attempt: key }, "attempt cancelled");
      wake();
    },
    async giveUpStart(work, message) {
      const reporter = o.reporterFor(refOf(work));
      try {
        if (o.executor.abandon) await o.executor.abandon(work, message, reporter);
        else reporter.report({ type: "failed", message });
      } catch (err) {
        o.logger.error({ attempt: attemptKey(work), err: errInfo(err) }, "the executor could not record the abandoned start; reporting it failed");
        reporter.report({ type: "failed", message });
      }
      o.logger.error({ runId: work.runId, nodeId: work.nodeId, attempt: attemptKey(work), message }, "gave up starting the attempt; reported failed");
      wake();
    },
    reportUnreadable(ref, message) {
      o.reporterFor(ref).report({ type: "failed", message });
    },
    wake,
    waiting: () => waiting.size,
  };
}
