/**
 * Dispatch over NATS on loopback, with the real nats-server, the control plane under
 * `wrangler dev` and the agent core in this process (its executor records when work arrives and
 * ends each attempt at once — it stands in for real steps, whose run time is not what we measure):
 * - latency from a run's submit to the agent receiving its first node,
 * - latency from a node's end (reported by the agent) to the agent receiving its dependant,
 * - the same latency right after nats-server restarted, and after it and the control plane both did,
 * - throughput: 1,000 independent nodes from submit to the run's end,
 * - the resident memory of an idle real agent process, run as an image would run it: the
 *   bundle of `npm run agent:build` with the V8 flags of scripts/local/agent.ts.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { promisify } from "node:util";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig, type AgentConfig } from "../../agent/src/config";
import type { AttemptReporter, Executor } from "../../agent/src/executor/types";
import { createLogger } from "../../agent/src/log";
import { run as runAgent } from "../../agent/src/main";
import type { WorkStart } from "../../proto/messages";
import { startAgent } from "../../scripts/local/agent";
import { ROOT, startControlPlane } from "../../scripts/local/control-plane";
import { startTestNatsServer } from "../support/nats-server";
import { type Sample, summarize } from "./stats";

const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 40);
/** Restarts take seconds each: fewer samples. */
const RESTART_SAMPLES = Number(process.env.BENCH_RESTART_SAMPLES ?? 10);
const TOKEN = "bench-dispatch-token";

/** Records arrivals; ends each attempt at once unless told to hold it. */
class ArrivalExecutor implements Executor {
  arrivals = new Map<string, number>();
  ended = new Map<string, number>();
  waiters = new Map<string, () => void>();
  async start(work: WorkStart, reporter: AttemptReporter) {
    const at = performance.now();
    if (this.arrivals.has(work.nodeRunId)) return;
    this.arrivals.set(work.nodeRunId, at);
    this.waiters.get(`${work.nodeId}@${work.runId}`)?.();
    queueMicrotask(() => {
      this.ended.set(work.nodeRunId, performance.now());
      reporter.report({ type: "succeeded", counts: { total: 1, done: 1, failed: 0, running: 0 } });
    });
  }
  async cancel() {}
  async runEnded() {}
  async reconcile() {
    return [];
  }
  running() {
    return 0;
  }
  async close() {}
  arrival(runId: string, nodeId: string): Promise<void> {
    return new Promise((r) => this.waiters.set(`${nodeId}@${runId}`, r));
  }
}

export async function benchDispatch() {
  const dirs = [mkdtempSync(join(tmpdir(), "bench-cp-")), mkdtempSync(join(tmpdir(), "bench-agent-")), mkdtempSync(join(tmpdir(), "bench-agent2-"))];
  const nats = await startTestNatsServer();
  const cpVars = { PARALLELS_ADMIN_TOKEN: TOKEN, NATS_WS_URL: nats.wsUrl, NATS_URL: nats.url, ...nats.secrets };
  let cp = await startControlPlane({ stateDir: dirs[0]!, vars: cpVars });
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(cp.url + path, { method, headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
    const json = (await res.json()) as any;
    if (res.status >= 300) throw new Error(`${method} ${path} → ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  const executor = new ArrivalExecutor();
  const ac = new AbortController();
  let agentDone: Promise<void> | undefined;
  const stopAll: (() => Promise<unknown>)[] = [];
  try {
    const cluster = await api("POST", "/v1/clusters", { name: "bench", kind: "local", labels: { bench: "dispatch" } });
    const config = loadConfig(
      [
        "--control-plane-url",
        cp.url,
        "--state-dir",
        dirs[1]!,
        "--health-port",
        "0",
        "--bootstrap-token",
        cluster.bootstrap.token,
        "--mlflow-tracking-uri",
        "http://127.0.0.1:9",
        "--max-concurrent-attempts",
        "1000",
      ],
      {},
    ) as AgentConfig;
    agentDone = runAgent(config, ac.signal, { logger: createLogger({ level: "silent" }), createExecutor: () => executor });
    const node = (id: string, extra = {}) => ({ id, project: { uri: "bench" }, cluster: "bench", ...extra });
    await api("POST", "/v1/dags", { name: "one", nodes: [node("a")] });
    await api("POST", "/v1/dags", { name: "chain", nodes: [node("a"), node("b", { after: ["a"] })] });
    await api("POST", "/v1/dags", { name: "wide", nodes: Array.from({ length: 1000 }, (_, i) => node(`n${i}`)) });
    const waitRun = async (id: string) => {
      for (;;) {
        const r = await api("GET", `/v1/runs/${id}`);
        if (r.status === "succeeded") return;
        await new Promise((res) => setTimeout(res, 20));
      }
    };

    const submitToAccept: Sample[] = [];
    const endToDependant: Sample[] = [];
    for (let i = 0; i < 5 + SAMPLES; i++) {
      // One node: submit → the agent has it.
      const t0 = performance.now();
      const pending = { resolve: () => {} };
      const arrived = new Promise<void>((r) => (pending.resolve = r));
      const submitted = api("POST", "/v1/runs", { dag: "chain" });
      const { id } = await submitted;
      executor.waiters.set(`a@${id}`, pending.resolve);
      if (!executor.arrivals.has(`${id}-a`)) await arrived;
      const b = executor.arrival(id, "b");
      if (!executor.arrivals.has(`${id}-b`)) await b;
      if (i >= 5) {
        const ms = executor.arrivals.get(`${id}-a`)! - t0;
        submitToAccept.push({ wall: ms, cpu: NaN, d1: NaN });
        const dep = executor.arrivals.get(`${id}-b`)! - executor.ended.get(`${id}-a`)!;
        endToDependant.push({ wall: dep, cpu: NaN, d1: NaN });
      }
      await waitRun(id);
    }

    // Right after nats-server restarts (and, second, after it and the control plane both did):
    // submit at once, and time until the agent has the node. The agent core reconnects by itself;
    // the publisher must notice NATS is back without other traffic waking it.
    const afterNatsRestart: Sample[] = [];
    const afterBothRestart: Sample[] = [];
    const firstArrival = async (id: string) => {
      const arrived = new Promise<void>((r) => executor.waiters.set(`a@${id}`, r));
      if (!executor.arrivals.has(`${id}-a`)) await arrived;
      return executor.arrivals.get(`${id}-a`)!;
    };
    for (let i = 0; i < RESTART_SAMPLES; i++) {
      await nats.restart();
      const t0 = performance.now();
      const { id } = await api("POST", "/v1/runs", { dag: "one" });
      afterNatsRestart.push({ wall: (await firstArrival(id)) - t0, cpu: NaN, d1: NaN });
      await waitRun(id);
    }
    const cpPort = Number(new URL(cp.url).port);
    for (let i = 0; i < Math.ceil(RESTART_SAMPLES / 2); i++) {
      await cp.stop();
      await nats.restart();
      cp = await startControlPlane({ stateDir: dirs[0]!, port: cpPort, vars: cpVars });
      const t0 = performance.now();
      const { id } = await api("POST", "/v1/runs", { dag: "one" });
      afterBothRestart.push({ wall: (await firstArrival(id)) - t0, cpu: NaN, d1: NaN });
      await waitRun(id);
    }

    const t0 = performance.now();
    const wide = await api("POST", "/v1/runs", { dag: "wide" });
    await waitRun(wide.id);
    const seconds = (performance.now() - t0) / 1000;

    // Real agent processes, idle: registered, connected, pulling, nothing to do. Three of them,
    // since one RSS reading moves by several MB from run to run; the median is reported.
    await promisify(execFile)(join(ROOT, "node_modules/.bin/tsx"), [join(ROOT, "agent/build.ts")]);
    const pids: number[] = [];
    for (const i of [0, 1, 2]) {
      const idle = await api("POST", "/v1/clusters", { name: `idle-${i}`, kind: "local" });
      const dir = join(dirs[2]!, String(i));
      const proc = await startAgent({ controlPlaneUrl: cp.url, mlflowUrl: "http://127.0.0.1:9", stateDir: dir, projectsRoot: dir, bootstrapToken: idle.bootstrap.token, bundle: true });
      stopAll.push(() => proc.stop());
      pids.push(proc.pid);
    }
    await new Promise((r) => setTimeout(r, Number(process.env.BENCH_IDLE_SECONDS ?? 30) * 1000));
    const rss = pids.map((pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]) / 1024).sort((a, b) => a - b);
    const rssMb = rss[1]!;

    const row = (label: string, target: string, samples: Sample[]) => ({ ...summarize(label, target, samples), d1: "—" });
    return [
      row("dispatch: submit → agent has the node", "p50 < 20 ms, p99 < 100 ms", submitToAccept),
      row("dispatch: node ended → agent has the dependant", "p50 < 20 ms, p99 < 100 ms", endToDependant),
      row("dispatch: submit → agent has the node, right after a nats-server restart", "p50 < 1 s", afterNatsRestart),
      row("… right after nats-server and the control plane restarted", "p50 < 1 s", afterBothRestart),
      {
        label: "throughput: 1,000 independent nodes",
        n: 1,
        cpuMedian: NaN,
        cpuP99: NaN,
        wallMedian: seconds * 1000,
        wallP99: NaN,
        d1: "—",
        target: `${Math.round(1000 / (seconds / 60))} nodes/min (target ≥ 3,000)`,
      },
      {
        label: "agent RSS, idle (bundled, real process)",
        n: 1,
        cpuMedian: NaN,
        cpuP99: NaN,
        wallMedian: NaN,
        wallP99: NaN,
        d1: "—",
        target: `${rssMb.toFixed(0)} MB median of ${rss.map((r) => r.toFixed(0)).join("/")} (target < 80 MB)`,
      },
    ];
  } finally {
    for (const s of stopAll) await s().catch(() => undefined);
    ac.abort();
    await agentDone?.catch(() => undefined);
    await cp.stop();
    await nats.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}
