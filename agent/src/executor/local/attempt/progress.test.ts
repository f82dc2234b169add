import { describe, expect, it } from "vitest";
import { HEARTBEAT_MS, MIN_PROGRESS_MS, ProgressThrottle } from "./progress";

const counts = (total: number, done: number, running: number, failed = 0) => ({ total, done, failed, running });

/** Reports of an attempt of `total` partitions ending one every `everyMs`, `running` at a time, through the throttle. */
function reportsOf(total: number, everyMs: number, running: number): number {
  let reported = JSON.stringify(counts(total, 0, 0));
  const t = new ProgressThrottle(() => reported);
  let n = 0;
  for (let done = 0; done <= total; done++) {
    const c = counts(total, done, done < total ? running : 0);
    if (t.due(c, done * everyMs)) {
      reported = JSON.stringify(c);
      n++;
    }
  }
  return n;
}

describe("progress reports", () => {
  it("go out for every change of a small node, and at most about a hundred (plus heartbeats) whatever the partition count", () => {
    expect(reportsOf(5, MIN_PROGRESS_MS, 2)).toBe(6);
    const large = reportsOf(10_000, 50, 10); // 500 s
    expect(large).toBeGreaterThanOrEqual(100);
    expect(large).toBeLessThanOrEqual(102 + (10_000 * 50) / HEARTBEAT_MS);
    expect(reportsOf(100_000, 5, 10)).toBeLessThanOrEqual(102 + (100_000 * 5) / HEARTBEAT_MS);
  });

  it("never repeats the counters last reported, and sends the first change at once", () => {
    let reported = JSON.stringify(counts(3, 0, 0));
    const t = new ProgressThrottle(() => reported);
    expect(t.due(counts(3, 0, 0), 0)).toBe(false);
    expect(t.due(counts(3, 0, 1), 0)).toBe(true);
    reported = JSON.stringify(counts(3, 0, 1));
    // The running count alone changes: not before the heartbeat.
    expect(t.due(counts(3, 0, 2), MIN_PROGRESS_MS)).toBe(false);
    expect(t.due(counts(3, 0, 2), HEARTBEAT_MS)).toBe(true);
  });
});
