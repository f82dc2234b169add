/** Cron expressions of schedules: five fields (minute granularity, as Workers Cron Triggers fire). */
import { Cron } from "croner";
import type { ProblemDetail } from "../../../proto/errors";

export function cronProblems(expr: string, timezone: string): ProblemDetail[] {
  const fields = expr.trim().split(/\s+/);
  if (fields.length !== 5) {
    return [{ path: "cron", message: `expected 5 fields (minute hour day-of-month month day-of-week), got ${fields.length}` }];
  }
  try {
    new Cron(expr, { paused: true, timezone }).nextRun(new Date(0));
    return [];
  } catch (err) {
    const message = (err as Error).message;
    return [{ path: /timezone/i.test(message) ? "timezone" : "cron", message: message.replace(/^Cron\w*: /, "").split(". Original error")[0]! }];
  }
}

/** The first occurrence strictly after `after` (ms), or null when there is none. */
export function nextOccurrence(expr: string, timezone: string, after: number): number | null {
  const next = new Cron(expr, { paused: true, timezone }).nextRun(new Date(after));
  return next ? next.getTime() : null;
}
