/**
 * `npm run bench` (control-plane part): the API under `wrangler dev` (real workerd, local D1) on
 * 127.0.0.1. For 1,000-node DAGs: validate + store, and submit a run. Reports, from the Worker's
 * own Server-Timing, the isolate time apart from D1 waits (our CPU-time estimate) and the D1 round
 * trips per request, next to the client's wall time. Median and p99 over the samples.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startControlPlane } from "../../scripts/local/control-plane";
import { layeredDag, type Sample, summarize } from "./stats";

const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 40);
const WARMUP = 5;
const TOKEN = "bench-admin-token";

export async function benchControlPlane(): Promise<ReturnType<typeof summarize>[]> {
  const state = mkdtempSync(join(tmpdir(), "parallels-bench-"));
  const cp = await startControlPlane({ stateDir: state, vars: { PARALLELS_ADMIN_TOKEN: TOKEN } });
  const call = async (method: string, path: string, body: unknown): Promise<Sample> => {
    const start = performance.now();
    const res = await fetch(cp.url + path, { method, headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" }, body: JSON.stringify(body) });
    const text = await res.text();
    const wall = performance.now() - start;
    if (!res.ok) throw new Error(`${method} ${path} → ${res.status}: ${text.slice(0, 500)}`);
    const timing = res.headers.get("server-timing") ?? "";
    const num = (re: RegExp) => Number(re.exec(timing)?.[1] ?? NaN);
    return { wall, cpu: num(/cpu;[^,]*dur=([\d.]+)/), d1: num(/d1;[^,]*dur=(\d+)/), body: text };
  };
  try {
    await call("POST", "/v1/clusters", { name: "bench", kind: "local" });
    const rows: ReturnType<typeof summarize>[] = [];
    const measure = async (label: string, target: string, make: (i: number) => Promise<Sample>) => {
      const samples: Sample[] = [];
      for (let i = 0; i < WARMUP + SAMPLES; i++) {
        const s = await make(i);
        if (i >= WARMUP) samples.push(s);
      }
      rows.push(summarize(label, target, samples));
    };
    let n = 0;
    await measure("validate only, 1,000 nodes", "", async () => call("POST", "/v1/dags:validate", layeredDag(`v-${n++}`, 1000)));
    await measure("validate + store, 1,000 nodes", "", async () => call("POST", "/v1/dags", layeredDag(`s-${n++}`, 1000)));
    await call("POST", "/v1/dags", layeredDag("big", 1000));
    await call("POST", "/v1/dags", layeredDag("small", 10));
    await measure("submit run, 10 nodes", "", async () => call("POST", "/v1/runs", { dag: "small" }));
    await measure("submit run, 1,000 nodes", "CPU < 50 ms, D1 trips constant", async () => call("POST", "/v1/runs", { dag: "big" }));
    return rows;
  } finally {
    await cp.stop();
    rmSync(state, { recursive: true, force: true });
  }
}
