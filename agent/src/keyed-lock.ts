/**
 * One lock per key for async work within this process: calls with the same key run one at a time,
 * in the order they were made; calls with different keys do not wait for each other. A call that
 * fails (rejects or throws) hands its error to its own caller only; the next call runs as usual.
 * A key with nothing running or waiting is forgotten, so the lock holds only keys in use.
 *
 * Not re-entrant: `run(k, …)` awaited inside a `run(k, …)` waits for itself for ever.
 *
 * Used wherever the agent serialises work on one thing: an attempt's start, cancel and pruning
 * (executor), the writes of an attempt's record (state), checkouts and pruning of a repository's
 * folder (git).
 */
export class KeyedLock {
  /** Per key, a promise that settles when the last call queued on it is over (never rejects). */
  private readonly tails = new Map<string, Promise<void>>();

  /** Runs `fn` once every earlier call with `key` is over; resolves or rejects as `fn` does. */
  run<T>(key: string, fn: () => T | Promise<T>): Promise<T> {
    const result = (this.tails.get(key) ?? Promise.resolve()).then(fn);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  /** How many keys have a call running or waiting. */
  get size(): number {
    return this.tails.size;
  }
}
