/**
 * @module
 * How often a running attempt reports its partition counters. Each report is an event the control
 * plane applies to D1 (batched, one read and one write per batch), so at thousands of partitions
 * "on every change" would make D1's work grow with the partition count. A change goes out when it
 * is the first, when the share of ended partitions crossed another percent (at most one a second),
 * or when the last report is {@link HEARTBEAT_MS} old: about a hundred reports per attempt
 * whatever its size, every change for a small node, and the final event carries the exact counts.
 */
import type { AttemptReport } from "../../types";

type Counts = NonNullable<AttemptReport["counts"]>;

/** Least time between two reports of a percent crossed. */
export const MIN_PROGRESS_MS = 1000;
/** A change older than this goes out anyway (e.g. the running count of long steps). */
export const HEARTBEAT_MS = 10_000;

const percentEnded = (c: Counts) => (c.total > 0 ? Math.floor((100 * (c.done + c.failed)) / c.total) : 0);

export class ProgressThrottle {
  private lastAt = Number.NEGATIVE_INFINITY;
  private lastPercent = -1;
  private first = true;

  /** `reported`: the counters the attempt's last event carried (as JSON). */
  constructor(private readonly reported: () => string) {}

  /** Whether `counts` are to be reported now; if so, they count as reported. */
  due(counts: Counts, now: number): boolean {
    if (JSON.stringify(counts) === this.reported()) return false;
    const percent = percentEnded(counts);
    const since = now - this.lastAt;
    if (!(this.first || (percent !== this.lastPercent && since >= MIN_PROGRESS_MS) || since >= HEARTBEAT_MS)) return false;
    this.first = false;
    this.lastAt = now;
    this.lastPercent = percent;
    return true;
  }
}
