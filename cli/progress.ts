/**
 * The live view of `run start --watch` and `run watch`: a progress bar per step with its partition
 * counts, redrawn in place on a terminal. When the output is not a terminal (a CI log, a pipe) a
 * line is printed only when a step changes, so the log reads as a history instead of a flood of
 * redraws. Drawn by hand with three ANSI sequences; no library is needed for that.
 */
import type { NodeRunView, RunView } from "../proto/client";

const BAR = 20;

export interface ProgressView {
  update(run: RunView): void;
}

/** `order`: the node ids in the DAG's topological order (the API lists them by id). */
export function progressView(out: NodeJS.WriteStream, order: readonly string[] = []): ProgressView {
  const sorted = (run: RunView) => [...(run.nodes ?? [])].sort(byOrder(order));
  return out.isTTY ? new Redrawn(out, sorted) : new Logged(out, sorted);
}

/** Compares node runs by their place in `order` (the DAG's); ids not in it go last. */
export function byOrder(order: readonly string[]): (a: NodeRunView, b: NodeRunView) => number {
  const rank = (id: string) => {
    const i = order.indexOf(id);
    return i < 0 ? order.length : i;
  };
  return (a, b) => rank(a.nodeId) - rank(b.nodeId);
}

function counts(n: NodeRunView): string {
  const p = n.partitions;
  const extra = [p.running ? `${p.running} running` : "", p.failed ? `${p.failed} failed` : "", n.attempt > 1 ? `attempt ${n.attempt}` : ""].filter(Boolean).join(", ");
  return `${p.done}/${p.total || "?"}${extra ? ` (${extra})` : ""}`;
}

const runLine = (run: RunView) => `run ${run.id} · ${run.dag} v${run.dagVersion} · ${run.status}${run.cancelRequested && run.status !== "cancelled" ? " (cancel requested)" : ""}`;

class Redrawn implements ProgressView {
  private drawn = 0;
  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly sorted: (run: RunView) => NodeRunView[],
  ) {}

  update(run: RunView): void {
    const nodes = this.sorted(run);
    const width = Math.max(...nodes.map((n) => n.nodeId.length), 4);
    const lines = [runLine(run), ...nodes.map((n) => `  ${n.nodeId.padEnd(width)}  ${bar(n)}  ${n.status.padEnd(10)} ${counts(n)}`)];
    const columns = this.out.columns || 120;
    // Up to the first line drawn last time, clear to the end of the screen, draw again.
    const up = this.drawn > 0 ? `\x1b[${this.drawn}A\r\x1b[J` : "";
    this.out.write(`${up}${lines.map((l) => l.slice(0, columns - 1)).join("\n")}\n`);
    this.drawn = lines.length;
  }
}

function bar(n: NodeRunView): string {
  const { total, done, failed } = n.partitions;
  const full = n.status === "succeeded" || n.status === "reused" || n.status === "cached" ? BAR : total > 0 ? Math.floor((done / total) * BAR) : 0;
  const bad = total > 0 ? Math.min(BAR - full, Math.ceil((failed / total) * BAR)) : 0;
  return `${"█".repeat(full)}${"▓".repeat(bad)}${"░".repeat(BAR - full - bad)}`;
}

class Logged implements ProgressView {
  private last = new Map<string, string>();
  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly sorted: (run: RunView) => NodeRunView[],
  ) {}

  update(run: RunView): void {
    this.emit("", runLine(run));
    for (const n of this.sorted(run)) this.emit(n.nodeId, `  ${n.nodeId}: ${n.status} ${counts(n)}${n.message ? ` — ${n.message}` : ""}`);
  }

  private emit(key: string, line: string): void {
    if (this.last.get(key) === line) return;
    this.last.set(key, line);
    this.out.write(`${line}\n`);
  }
}
