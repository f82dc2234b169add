/**
 * The time windows of a run's inputs (`window` on an input: schema.ts `WindowSchema`), resolved
 * to absolute `[from, to)` in epoch milliseconds when the run is made — at its time `at` (a
 * scheduled run: its occurrence) — and recorded on the run, so every attempt and retry of a node
 * takes the same items. `{since: lastRun}` starts where the same input's window of the previous
 * successful run ended (nothing before: from the beginning): across consecutive runs every item is
 * taken once — a run that failed for good, or a tick skipped by the overlap policy, leaves its
 * items to the next run that succeeds.
 */
import type { Dag, Window } from "./schema";

export interface ResolvedWindow {
  from: number;
  to: number;
  skipIfEmpty: boolean;
}

/** Windows by `"<node>.<input>"`. */
export type RunWindows = Record<string, ResolvedWindow>;

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

export function durationMs(d: string): number {
  return Number(d.slice(0, -1)) * UNIT_MS[d.slice(-1) as keyof typeof UNIT_MS];
}

export const windowKey = (nodeId: string, input: string) => `${nodeId}.${input}`;

function resolve(w: Window, at: number, previousTo: number | undefined): ResolvedWindow {
  const skipIfEmpty = w.skipIfEmpty ?? true;
  if ("since" in w) return { from: previousTo ?? 0, to: at, skipIfEmpty };
  if ("last" in w) return { from: at - durationMs(w.last), to: at, skipIfEmpty };
  return { from: Date.parse(w.from), to: w.to ? Date.parse(w.to) : at, skipIfEmpty };
}

/** The windows of every windowed input of `dag`, at `at`; null when it has none. */
export function resolveWindows(dag: Dag, at: number, previous: RunWindows | null): RunWindows | null {
  const out: RunWindows = {};
  for (const node of dag.nodes) {
    for (const [name, ref] of Object.entries(node.inputs ?? {})) {
      if (!ref.window) continue;
      const key = windowKey(node.id, name);
      out[key] = resolve(ref.window, at, previous?.[key]?.to);
    }
  }
  return Object.keys(out).length > 0 ? out : null;
}

/** Whether any input of the DAG takes what arrived since the last successful run. */
export const needsPreviousWindows = (dag: Dag) => dag.nodes.some((n) => Object.values(n.inputs ?? {}).some((r) => r.window && "since" in r.window));

/** The windows of one node's inputs, by input name (what its start message carries). */
export function nodeWindows(windows: RunWindows | null, nodeId: string): Record<string, ResolvedWindow> | undefined {
  if (!windows) return undefined;
  const prefix = `${nodeId}.`;
  const own = Object.entries(windows).filter(([k]) => k.startsWith(prefix));
  return own.length > 0 ? Object.fromEntries(own.map(([k, w]) => [k.slice(prefix.length), w])) : undefined;
}

/**
 * Why an input cannot carry a window; undefined when it can. A window keeps the items that
 * arrived in it, so it needs a per-item arrival time: a local folder has one (each file's
 * modification time). MLflow run artifacts (`{node}`, `{run}`, `runs:/`) have none — MLflow
 * records no time per artifact — and an `http(s)://` URL is one file, so a window there could
 * only be all or nothing; refusing them at registration is more honest than a window that
 * silently takes everything or nothing.
 */
export function windowRefusal(ref: { node?: unknown; run?: unknown; uri?: unknown }): string | undefined {
  const why = "a window keeps the items that arrived in it, and only local folders (on the embedded default) give each item an arrival time (its file's modification time)";
  if (ref.node !== undefined) return `a window is not supported on a {node} input: MLflow artifacts carry no per-file time; ${why}`;
  if (ref.run !== undefined) return `a window is not supported on a {run} input: MLflow artifacts carry no per-file time; ${why}`;
  if (typeof ref.uri === "string" && /^runs:\//i.test(ref.uri)) return `a window is not supported on a runs:/ input: MLflow artifacts carry no per-file time; ${why}`;
  if (typeof ref.uri === "string" && /^https?:\/\//i.test(ref.uri)) return `a window is not supported on an http(s) input (one file, no listing); ${why}`;
  return undefined;
}
