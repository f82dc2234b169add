/**
 * CPU seconds of the processes a benchmark started (every descendant of this process), by part —
 * the API server, etcd, kwok, the agent, MLflow… — read from /proc (utime + stime), so a row can
 * say where the machine's time went. Processes that ended between two reads are not counted.
 */
import { readdirSync, readFileSync } from "node:fs";
import { basename } from "node:path";

const HZ = 100; // USER_HZ: the unit of /proc/<pid>/stat times on Linux

interface Proc {
  pid: number;
  ppid: number;
  cpu: number;
  argv: string[];
}

function readProc(pid: number): Proc | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
    return { pid, ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12])) / HZ, argv };
  } catch {
    return null; // gone meanwhile
  }
}

const COMPONENTS = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "nats-server", "workerd"];

/** The part a process belongs to by its own command line, or undefined (then its parent's part). */
function partOf(argv: string[]): string | undefined {
  const exe = basename(argv[0] ?? "");
  if (COMPONENTS.includes(exe)) return exe;
  const line = argv.join(" ");
  // The agent from its sources (agent/bin/parallels-agent execs node on main.ts) or its bundle; before "mlflow": its flags name MLflow.
  if (line.includes("parallels-agent") || line.includes("agent/src/main.ts")) return "agent";
  if (line.includes("mlflow") || line.includes("uvicorn") || line.includes("gunicorn")) return "mlflow";
  if (line.includes("wrangler")) return "wrangler";
  return undefined;
}

/** CPU seconds so far of every descendant of this process, summed by part. */
export function cpuByPart(root = process.pid): Map<string, number> {
  const procs = new Map<number, Proc>();
  for (const name of readdirSync("/proc")) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const p = readProc(pid);
    if (p) procs.set(pid, p);
  }
  const parts = new Map<string, number>();
  const partOfPid = new Map<number, string | null>();
  // A process's part: its own, else its nearest ancestor's; null when it does not descend from `root`.
  const resolve = (pid: number): string | null => {
    if (partOfPid.has(pid)) return partOfPid.get(pid)!;
    const p = procs.get(pid);
    let part: string | null;
    if (!p || pid <= 1) part = null;
    else if (pid === root) part = "bench";
    else {
      const up = resolve(p.ppid);
      part = up === null ? null : (partOf(p.argv) ?? (up === "bench" ? basename(p.argv[0] ?? "other") : up));
    }
    partOfPid.set(pid, part);
    return part;
  };
  for (const p of procs.values()) {
    const part = resolve(p.pid);
    if (part !== null) parts.set(part, (parts.get(part) ?? 0) + p.cpu);
  }
  return parts;
}

/** `after − before`, largest first, as "kube-apiserver 31.0, kwok 10.6, …" (parts under 0.5 s left out). */
export function cpuDelta(before: Map<string, number>, after: Map<string, number>): { total: number; text: string } {
  const rows = [...after].map(([part, s]) => [part, s - (before.get(part) ?? 0)] as const).filter(([, s]) => s > 0);
  const total = rows.reduce((a, [, s]) => a + s, 0);
  const text = rows
    .filter(([, s]) => s >= 0.5)
    .sort((a, b) => b[1] - a[1])
    .map(([part, s]) => `${part} ${s.toFixed(1)}`)
    .join(", ");
  return { total, text };
}
