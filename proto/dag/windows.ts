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
 * arrived in it, so it needs a per-item arrival time. Two sources have one: a local folder (a
 * path or `file://`, on the embedded default: each file's modification time) and an
 * `{experiment}` input (each FINISHED run's end time — MLflow records no time per artifact, but
 * a run's artifacts are final once it ended). The others are refused at registration, which is
 * more honest than a window that silently takes everything or nothing:
 * - `{node}`: the upstream node's result in the same DAG run — one run, made by this run;
 * - `{run}`, `runs:/`: one run ends once, so a window would take it whole in one run of a
 *   schedule and give every other run nothing — the stream of runs is `{experiment}`;
 * - `http(s)://`: one file, no listing;
 * - other schemes (`s3://`, `gs://` …): not read by any executor here yet.
 */
export function windowRefusal(ref: { node?: unknown; run?: unknown; uri?: unknown; experiment?: unknown }): string | undefined {
  const sources =
    "a window keeps the items that arrived in it, which needs a time per item: local folders (a path or file://, each file's modification time) and {experiment} inputs (each run's end time) have one";
  if (ref.experiment !== undefined) return undefined;
  if (ref.node !== undefined) return `a window is not supported on a {node} input: it is the upstream node's result in this same DAG run, one MLflow run made by this run; ${sources}`;
  const oneRun =
    'one MLflow run ends once, so a window would take all of it in one run of the schedule and nothing in every other (MLflow keeps no time per artifact); to take the runs of an experiment as they end, use {experiment: "<name>", path?} with the window';
  if (ref.run !== undefined) return `a window is not supported on a {run} input: ${oneRun}`;
  if (typeof ref.uri !== "string") return undefined;
  if (/^runs:\//i.test(ref.uri)) return `a window is not supported on a runs:/ input: ${oneRun}`;
  if (/^https?:\/\//i.test(ref.uri)) return `a window is not supported on an http(s) input (one file, no listing); ${sources}`;
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(ref.uri)?.[1]?.toLowerCase();
  if (scheme && scheme !== "file") return `a window is not supported on a ${scheme}:// input: no executor here lists ${scheme}:// objects yet; ${sources}`;
  return undefined;
}
