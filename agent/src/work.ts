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
import type { Logger } from "./log";

export interface WorkHandler {
  /** Resolves once the attempt is durably started, or needs nothing (the message is acked then); rejects: retry later. */
  handleStart(work: WorkStart, signal: AbortSignal): Promise<void>;
  /** Resolves once the attempt is cancelled (acked then); rejects: retry later. */
  handleCancel(work: WorkCancel): Promise<void>;
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
  const hasRoom = () => starting + o.executor.running() < o.maxConcurrent;

  async function waitForRoom(key: string, signal: AbortSignal): Promise<"go" | "cancelled"> {
    if (hasRoom()) return "go";
    waiting.add(key);
    o.logger.info({ attempt: key, running: o.executor.running(), max: o.maxConcurrent }, "at capacity; the start waits for room");
    try {
      for (;;) {
        if (signal.aborted) throw new ShuttingDown();
        if (cancelledWhileWaiting.delete(key)) return "cancelled";
        if (hasRoom()) return "go";
        const stop = new AbortController();
        let waker!: () => void;
        const woken = new Promise<void>((r) => wakers.push((waker = r)));
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
    starting++;
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
    wake,
    waiting: () => waiting.size,
  };
}
