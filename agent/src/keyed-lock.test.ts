import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { KeyedLock } from "./keyed-lock";

/** A promise settled from outside, to hold a call inside the lock as long as a test needs. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { open, opened };
}

const ticks = async (n: number) => {
  for (let i = 0; i < n; i++) await Promise.resolve();
};

describe("KeyedLock", () => {
  it("runs calls with one key one at a time, in call order, and returns each call's result", async () => {
    const lock = new KeyedLock();
    const log: string[] = [];
    const first = gate();
    const a = lock.run("k", async () => {
      log.push("a start");
      await first.opened;
      log.push("a end");
      return 1;
    });
    const b = lock.run("k", () => {
      log.push("b");
      return 2;
    });
    await ticks(10);
    expect(log).toEqual(["a start"]); // b waits while a holds the key
    first.open();
    expect(await Promise.all([a, b])).toEqual([1, 2]);
    expect(log).toEqual(["a start", "a end", "b"]);
  });

  it("does not make calls with different keys wait for each other", async () => {
    const lock = new KeyedLock();
    const held = gate();
    const log: string[] = [];
    const a = lock.run("a", async () => {
      await held.opened;
      log.push("a");
    });
    await lock.run("b", () => log.push("b")); // resolves while "a" is still held
    expect(log).toEqual(["b"]);
    held.open();
    await a;
    expect(log).toEqual(["b", "a"]);
  });

  it("gives a failure to its own caller only: the next call with the key runs", async () => {
    const lock = new KeyedLock();
    const rejected = lock.run("k", async () => {
      throw new Error("async failure");
    });
    const thrown = lock.run("k", () => {
      throw new Error("sync failure");
    });
    const next = lock.run("k", () => "ran");
    await expect(rejected).rejects.toThrow("async failure");
    await expect(thrown).rejects.toThrow("sync failure");
    expect(await next).toBe("ran");
  });

  it("forgets a key once nothing runs or waits on it", async () => {
    const lock = new KeyedLock();
    const held = gate();
    const a = lock.run("a", () => held.opened);
    const b = lock.run("b", () => undefined);
    expect(lock.size).toBe(2);
    await b;
    await ticks(3);
    expect(lock.size).toBe(1);
    held.open();
    await a;
    await ticks(3);
    expect(lock.size).toBe(0);
  });

  it("property: per key, calls never overlap and start in call order, whatever fails", async () => {
    const call = fc.record({ key: fc.constantFrom("x", "y", "z"), steps: fc.nat({ max: 6 }), fails: fc.boolean(), gapBefore: fc.nat({ max: 3 }) });
    await fc.assert(
      fc.asyncProperty(fc.array(call, { minLength: 1, maxLength: 30 }), async (calls) => {
        const lock = new KeyedLock();
        const busy = new Set<string>();
        const overlaps: number[] = [];
        const started: Record<string, number[]> = {};
        const all: Promise<unknown>[] = [];
        for (const [i, c] of calls.entries()) {
          await ticks(c.gapBefore);
          const done = lock.run(c.key, async () => {
            if (busy.has(c.key)) overlaps.push(i);
            busy.add(c.key);
            started[c.key] = [...(started[c.key] ?? []), i];
            await ticks(c.steps);
            busy.delete(c.key);
            if (c.fails) throw new Error(`call ${i}`);
          });
          all.push(done.catch(() => undefined));
        }
        await Promise.all(all);
        expect(overlaps).toEqual([]);
        for (const [key, order] of Object.entries(started)) {
          expect(order).toEqual(calls.flatMap((c, i) => (c.key === key ? [i] : [])));
        }
        await ticks(3);
        expect(lock.size).toBe(0);
      }),
      { numRuns: 200 },
    );
  });
});
