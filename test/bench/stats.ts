/** Shared bits of the benchmarks: samples, percentiles, the table, and the DAGs they use. */
import { cpus, freemem, loadavg, totalmem } from "node:os";

export interface Sample {
  wall: number;
  cpu: number;
  d1: number;
  body?: string;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, i)]!;
}

export function summarize(label: string, target: string, samples: Sample[]) {
  const of = (k: "wall" | "cpu" | "d1") => samples.map((s) => s[k]).sort((a, b) => a - b);
  const wall = of("wall");
  const cpu = of("cpu");
  const d1 = of("d1");
  return {
    label,
    n: samples.length,
    cpuMedian: percentile(cpu, 50),
    cpuP99: percentile(cpu, 99),
    wallMedian: percentile(wall, 50),
    wallP99: percentile(wall, 99),
    d1: d1[0] === d1[d1.length - 1] ? String(d1[0]) : `${d1[0]}–${d1[d1.length - 1]}`,
    target,
  };
}

export function machineConditions(): string {
  const c = cpus();
  return `${c.length} × ${c[0]?.model ?? "cpu"}, load ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}, memory ${(freemem() / 2 ** 30).toFixed(1)}/${(totalmem() / 2 ** 30).toFixed(1)} GiB free, node ${process.version}`;
}

export function printTable(rows: ReturnType<typeof summarize>[]): void {
  const head = ["benchmark", "n", "CPU* median", "CPU* p99", "wall median", "wall p99", "D1 trips", "target"];
  const body = rows.map((r) => [r.label, String(r.n), ms(r.cpuMedian), ms(r.cpuP99), ms(r.wallMedian), ms(r.wallP99), r.d1, r.target]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  console.log(line(head));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const b of body) console.log(line(b));
  console.log("\n* CPU: time in the Worker's isolate apart from waiting for D1 (Server-Timing `cpu`), measured by workerd's clock (1 ms resolution).");
}

// Sub-millisecond timings (the JWT mint) keep three decimals; the rest one.
const ms = (v: number) => (!Number.isFinite(v) ? "n/a" : `${v.toFixed(v < 1 ? 3 : 1)} ms`);

/**
 * A DAG of `n` nodes in layers of up to 100; each node takes inputs from two nodes of the layer
 * above (fan-in) — the shape of multi-step pre-processing over many shards.
 */
export function layeredDag(name: string, n: number) {
  const width = Math.min(100, n);
  const nodes: Record<string, unknown>[] = [];
  for (let i = 0; i < n; i++) {
    const layer = Math.floor(i / width);
    const node: Record<string, unknown> = { id: `n${i}`, project: { uri: "examples/wordcount/count" }, parameters: { shard: i } };
    if (layer > 0) {
      const a = (layer - 1) * width + (i % width);
      const b = (layer - 1) * width + ((i + 1) % width);
      node.inputs = { left: { node: `n${a}` }, right: { node: `n${b}` } };
      node.partition = { by: "object", input: "left" };
      node.parallelism = 10;
    }
    nodes.push(node);
  }
  return { name, nodes };
}
