/**
 * Time, waiting and exponential back-off, injectable so loops can be tested without real time
 * (the `delayFn` of kubernetes-client's ListWatch).
 */

/** Milliseconds since the epoch (`Date.now` in production). */
export type Clock = () => number;

/** Waits `ms`, or less if `signal` aborts. Never rejects: callers check `signal.aborted`. */
export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

export const realSleep: Sleep = (ms, signal) =>
  new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });

export interface BackoffOptions {
  /** First delay (default 250 ms). */
  initialMs?: number;
  /** Upper bound (default 30 s). */
  maxMs?: number;
  /** Growth per failure (default 2). */
  factor?: number;
  /** Fraction of the delay taken off at random, so agents do not retry in lock-step (default 0.2). */
  jitter?: number;
  random?: () => number;
}

/** Exponential back-off: `initial · factor^n`, capped, minus up to `jitter` of it; `reset()` after a success. */
export class Backoff {
  private failures = 0;
  private readonly o: Required<BackoffOptions>;

  constructor(opts: BackoffOptions = {}) {
    this.o = { initialMs: 250, maxMs: 30_000, factor: 2, jitter: 0.2, random: Math.random, ...opts };
  }

  /** The delay before the next try (and counts one more failure). */
  next(): number {
    const base = Math.min(this.o.maxMs, this.o.initialMs * this.o.factor ** this.failures);
    this.failures++;
    return Math.round(base * (1 - this.o.jitter * this.o.random()));
  }

  reset(): void {
    this.failures = 0;
  }

  get attempts(): number {
    return this.failures;
  }
}
