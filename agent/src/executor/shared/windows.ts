/**
 * @module
 * Input windows on the agent side: the control plane fixes each run's windows (`[from, to)`,
 * epoch ms, `WorkStart.windows`), the executor keeps only the items that arrived in them. An
 * item's arrival is, for a local folder, its file's modification time, and for an `{experiment}`
 * input, its run's end time (experiment-input.ts; MLflow keeps no time per artifact, so windows
 * on other MLflow sources are refused at validation, proto/dag/windows.ts `windowRefusal`).
 * Half-open windows tile time: an item whose time is exactly a window's `to` belongs to the next
 * run, so consecutive `since: lastRun` runs take each item once. A file copied with its old mtime kept (`cp -p`, `rsync -t`) into a folder
 * after its window was taken is never seen: writers must let the mtime be the arrival.
 */
import type { WorkStart } from "../../../../proto/messages";

export type InputWindow = NonNullable<WorkStart["windows"]>[string];

/** Whether an item that arrived at `ms` (epoch ms, fractions allowed) is in `w`. */
export const inWindow = (ms: number, w: Pick<InputWindow, "from" | "to">): boolean => ms >= w.from && ms < w.to;

/** MLflow tags naming what each windowed input covered: `parallels.window.<input>` = `<ISO from>/<ISO to>`. */
export function windowTags(windows: Readonly<Record<string, InputWindow>> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, w] of Object.entries(windows ?? {})) out[`parallels.window.${name}`] = `${new Date(w.from).toISOString()}/${new Date(w.to).toISOString()}`;
  return out;
}

/**
 * The message of a node that succeeds without running (its windows held nothing), or undefined:
 * run it. Skipped only when every windowed input kept no item and each asks `skipIfEmpty` —
 * a skipped node succeeds and so "takes" its windows, so skipping while one windowed input had
 * items (or wants the step run regardless) would lose them.
 */
export function emptyWindowSkip(windows: Readonly<Record<string, InputWindow>> | undefined, kept: Readonly<Record<string, number>>): string | undefined {
  const entries = Object.entries(windows ?? {});
  if (entries.length === 0) return undefined;
  if (!entries.every(([name, w]) => w.skipIfEmpty && (kept[name] ?? 0) === 0)) return undefined;
  const spans = entries.map(([name, w]) => `'${name}' [${new Date(w.from).toISOString()}, ${new Date(w.to).toISOString()})`);
  return `skipped: the input window was empty (${spans.join(", ")}): nothing arrived, no partition ran`;
}
