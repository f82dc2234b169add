/**
 * @module
 * Helpers for tests of the local executor: work messages with defaults, a reporter that records
 * events and waits for one, inline projects in temp folders. Not used at run time.
 */
import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { DagNodeSchema } from "../../../proto/dag";
import type { DagInput } from "../../../proto/dag";
import type { WorkStart } from "../../../proto/messages";
import type { AttemptReport, AttemptReporter } from "./types";

type NodeInput = DagInput["nodes"][number];

let counter = 0;
/** A unique id for runs and node runs of one test. */
export function uid(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}${(counter++).toString(36)}${Math.random().toString(36).slice(2, 6)}`;
}

/** A start message for one node; the node is parsed with the DAG schema (defaults applied). */
export function workFor(node: NodeInput, over: Partial<Omit<WorkStart, "node">> & { dag?: WorkStart["dag"] } = {}): WorkStart {
  const runId = over.runId ?? uid("run");
  const parsed = DagNodeSchema.parse(node);
  return {
    type: "start",
    runId,
    nodeRunId: over.nodeRunId ?? `${runId}.${parsed.id}`,
    nodeId: parsed.id,
    attempt: over.attempt ?? 1,
    dag: over.dag ?? { name: "testdag", version: 1 },
    experiment: over.experiment ?? over.dag?.name ?? "testdag",
    node: parsed,
    params: over.params ?? {},
    upstream: over.upstream ?? [],
    mlflowParentRunId: over.mlflowParentRunId ?? null,
    ...(over.retry ? { retry: over.retry } : {}),
  };
}

export interface Recorder extends AttemptReporter {
  events: AttemptReport[];
  /** Resolves with the first event of that type (already seen or future). */
  waitFor(type: AttemptReport["type"], timeoutMs?: number): Promise<AttemptReport>;
  types(): string[];
}

export function recorder(): Recorder {
  const events: AttemptReport[] = [];
  const waiters: { type: string; resolve: (e: AttemptReport) => void }[] = [];
  return {
    events,
    report(e) {
      events.push(e);
      for (const w of waiters.filter((w) => w.type === e.type)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(e);
      }
    },
    waitFor(type, timeoutMs = 60_000) {
      const seen = events.find((e) => e.type === type);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no '${type}' event within ${timeoutMs} ms; got: ${JSON.stringify(events)}`)), timeoutMs);
        waiters.push({
          type,
          resolve: (e) => {
            clearTimeout(timer);
            resolve(e);
          },
        });
      });
    },
    types: () => events.map((e) => e.type),
  };
}

/** Write files (relative path → text) into a new temp folder; its path. */
export function makeDir(files: Record<string, string>, prefix = "parallels-project-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  writeFiles(dir, files);
  return dir;
}

export function writeFiles(dir: string, files: Record<string, string>): void {
  for (const [rel, text] of Object.entries(files)) {
    const p = join(dir, rel);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, text);
  }
}

/** Largest number of [start, end) intervals overlapping at one instant. */
export function maxOverlap(intervals: { start: number; end: number }[]): number {
  const points = intervals.flatMap((i) => [
    { t: i.start, d: 1 },
    { t: i.end, d: -1 },
  ]);
  points.sort((a, b) => a.t - b.t || a.d - b.d); // an end before a start at the same instant
  let cur = 0;
  let max = 0;
  for (const p of points) {
    cur += p.d;
    max = Math.max(max, cur);
  }
  return max;
}
