/**
 * The Kubernetes executor at scale, on the KWOK harness (KWOK stands in for kubelets: a pod
 * "runs" for the time its `PARALLELS_TEST_DELAY` says), through the real control plane, NATS,
 * MLflow and the agent as its own process (the bundle an image ships):
 * - fan-out: one node of 1,000 partitions, parallelism 100, pods of 1 s (ideal 10 s) — with the
 *   components at their default client budgets (the controller-manager's 20 QPS / 30 burst binds)
 *   and at {@link HIGH_BUDGET}, where no component's client waits; there, the same Job made
 *   straight through the API server (no agent, no MLflow) gives the harness's own floor; and
 *   10,000 partitions (ideal 100 s);
 * - throughput: 300 single-node DAG runs submitted at once, pods of 1 s, each tracked in MLflow.
 * Each with wall time against the ideal, API writes (apiserver /metrics) per partition or run —
 * all of them, and the agent's own — the agent's MLflow requests, CPU seconds and peak RSS, and
 * the CPU seconds of every process of the benchmark (procs.ts): on this machine the harness,
 * the agent and MLflow share its cores, so where the CPU went is where the time went.
 *
 * `BENCH_K8S_LARGE` (default 10000) and `BENCH_K8S_RUNS` (300) size the large fan-out and the
 * throughput; `BENCH_K8S_ONLY` (comma-separated: default, high, direct, large, runs) picks rows.
 */
import { execFile, execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { MlflowClient } from "../../proto/mlflow";
import { type ComponentTuning, type K8sCluster, startK8sCluster, WRITE_VERBS } from "../../scripts/k8s/harness";
import { startAgent, type AgentProcess } from "../../scripts/local/agent";
import { freePort, ROOT } from "../../scripts/local/control-plane";
import { type Embedded, startEmbedded } from "../../scripts/local/embedded";
import { cpuByPart, cpuDelta } from "./procs";
import { percentile, type summarize } from "./stats";

type Row = ReturnType<typeof summarize>;
const TOKEN = "bench-k8s-token";
const NS = "parallels-bench";
/** The direct Job's namespace: outside the agent's (its watches see only {@link NS}). */
const DIRECT_NS = "parallels-bench-direct";
/** The machine's cores: the CPU seconds a row's processes could have had in its wall time. */
const CORES = availableParallelism();
const cpuOf = (wallS: number) => `CPU s of ${(CORES * wallS).toFixed(0)} (${CORES} cores)`;
const log = (line: string) => process.stderr.write(`[bench k8s] ${line}\n`);
const ROWS = ["default", "high", "direct", "large", "runs"];
const only = new Set((process.env.BENCH_K8S_ONLY ?? ROWS.join(",")).split(",").map((x) => x.trim()));
for (const x of only) if (!ROWS.includes(x)) throw new Error(`BENCH_K8S_ONLY: ${x}? (rows: ${ROWS.join(", ")})`);

/**
 * Budgets at which no component's client waits in its token bucket (client-go's "Waited for …
 * due to client-side throttling"): the controller-manager's (pod creates, finalizer removals,
 * Job status; default 20/30), the scheduler's (one binding per pod; default 50/100, already the
 * limit at 50 pods/s), kwok's stage workers (default 4, each one status PATCH at a time: 4 in
 * flight at ~100 ms each bound it near 40 pod transitions/s), and Job syncs at once (default 5;
 * the throughput's 300 Jobs). What is left is the API server and this machine's CPU.
 */
export const HIGH_BUDGET: ComponentTuning = {
  kubeApiQps: 1000,
  kubeApiBurst: 2000,
  // Enough workers that the throughput's 300 Jobs are not queued behind 5 of them.
  concurrentJobSyncs: 50,
  schedulerApiQps: 1000,
  schedulerApiBurst: 2000,
  kwokPodWorkers: 16,
};
const HIGH_LABEL = "components at high budgets";

interface Setup {
  env: Embedded;
  dir: string;
  repo: string;
  commit: string;
  inputRun: string;
}

interface AgentCounters {
  writes: number;
  cpuSeconds: number;
  /** MLflow requests by endpoint (`runs/search`, …). */
  mlflow: Map<string, number>;
}

/** The agent's own counters from its /metrics. */
async function agentCounters(port: number): Promise<AgentCounters> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const sum = (re: RegExp) => [...text.matchAll(re)].reduce((s, m) => s + Number(m[1]), 0);
  return {
    writes: sum(/^parallels_agent_kubernetes_requests_total\{verb="(?:POST|PUT|PATCH|DELETE)"\} (\d+)/gm),
    cpuSeconds: sum(/^parallels_agent_process_cpu_seconds_total (\S+)/gm),
    mlflow: new Map([...text.matchAll(/^parallels_agent_mlflow_requests_total\{endpoint="([^"]*)"\} (\d+)/gm)].map((m) => [m[1]!, Number(m[2])])),
  };
}

/** "9.1 MLflow requests (runs/search 3.0, runs/create 2.0, …)" per unit between two readings of the agent's counters. */
function mlflowPer(before: AgentCounters, after: AgentCounters, per: number): string {
  const d = [...after.mlflow].map(([k, n]) => [k, (n - (before.mlflow.get(k) ?? 0)) / per] as const).filter(([, n]) => n > 0);
  const total = d.reduce((a, [, n]) => a + n, 0);
  const digits = per > 1 ? 1 : 0;
  // Once-per-cluster requests (the experiment's lookup) shared by many runs round to nothing.
  const fmt = (n: number) => (n.toFixed(digits) === (0).toFixed(digits) ? `<${(10 ** -digits).toFixed(digits)}` : n.toFixed(digits));
  return `${fmt(total)} MLflow requests (${d
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} ${fmt(n)}`)
    .join(", ")})`;
}

const peakRssMb = (pid: number) => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]) / 1024;

async function api(env: Embedded, method: string, path: string, body?: unknown) {
  const res = await fetch(env.control.url + path, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = (await res.json()) as any;
  if (res.status >= 300) throw new Error(`${method} ${path} → ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** A cluster of the harness with these component budgets, registered at the control plane with an agent of its own. */
async function clusterWithAgent(s: Setup, name: string, tuning: ComponentTuning = {}): Promise<{ k8s: K8sCluster; agent: AgentProcess; port: number; stop(): Promise<void> }> {
  const k8s = await startK8sCluster({ name, runDir: join(s.dir, name), log: () => {}, ...tuning });
  await k8s.kubectl(["create", "namespace", NS]);
  const cluster = await api(s.env, "POST", "/v1/clusters", { name, kind: "generic" });
  const port = await freePort();
  const agent = await startAgent({
    controlPlaneUrl: s.env.control.url,
    mlflowUrl: s.env.mlflow.url,
    stateDir: join(s.dir, `${name}-agent`),
    projectsRoot: s.dir,
    bootstrapToken: cluster.bootstrap.token,
    bundle: true,
    extraArgs: [
      "--executor",
      "kubernetes",
      "--kubeconfig",
      k8s.kubeconfigPath,
      "--namespace",
      NS,
      "--agent-image",
      "registry.example.test/parallels-agent:bench",
      "--health-port",
      String(port),
      "--max-concurrent-attempts",
      "32",
      "--pull-expires-seconds",
      "5",
    ],
  });
  for (let i = 0; i < 200 && !(await api(s.env, "GET", `/v1/clusters/${name}`)).agent; i++) await new Promise((r) => setTimeout(r, 200));
  return {
    k8s,
    agent,
    port,
    async stop() {
      await agent.stop();
      await k8s.stop();
    },
  };
}

async function waitRun(env: Embedded, id: string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await api(env, "GET", `/v1/runs/${id}`);
    if (["succeeded", "failed", "cancelled"].includes(r.status)) return r;
    if (Date.now() > deadline) throw new Error(`run ${id} did not finish within ${timeoutMs / 1000} s: ${JSON.stringify(r.nodes?.map((n: any) => [n.nodeId, n.status, n.partitions, n.message]))}`);
    await new Promise((res) => setTimeout(res, 250));
  }
}

const step = (s: Setup, cluster: string, extra: Record<string, unknown>) => ({
  id: "step",
  project: { uri: `file://${s.repo}`, version: s.commit },
  image: "registry.example.test/steps/python:3.11",
  cluster,
  env: { PARALLELS_TEST_DELAY: "1s" },
  ...extra,
});

type WithAgent = Awaited<ReturnType<typeof clusterWithAgent>>;

const row = (label: string, n: number, wallS: number, target: string): Row => ({ label, n, cpuMedian: NaN, cpuP99: NaN, wallMedian: wallS * 1000, wallP99: NaN, d1: "—", target });

/** One node of `partitions` (hash buckets over a one-file input), parallelism 100, pods of 1 s. */
async function fanOut(s: Setup, c: WithAgent, name: string, partitions: number, budget: string): Promise<{ row: Row; job: string }> {
  const dag = `fanout-${name}-${partitions}`;
  await api(s.env, "PUT", `/v1/dags/${dag}`, { name: dag, nodes: [step(s, name, { partition: { by: "hash", input: "data", partitions }, parallelism: 100, inputs: { data: { run: s.inputRun } } })] });
  const before = await c.k8s.metrics();
  const agentBefore = await agentCounters(c.port);
  const cpuBefore = cpuByPart();
  const t0 = performance.now();
  const { id } = await api(s.env, "POST", "/v1/runs", { dag });
  const run = await waitRun(s.env, id, partitions * 1000);
  const wall = (performance.now() - t0) / 1000;
  if (run.status !== "succeeded") throw new Error(`fan-out ${partitions}: ${run.status} ${run.nodes[0].message}`);
  const cpu = cpuDelta(cpuBefore, cpuByPart());
  const after = await c.k8s.metrics();
  const agentAfter = await agentCounters(c.port);
  const writes = after.count({ verbs: WRITE_VERBS }) - before.count({ verbs: WRITE_VERBS });
  const agentWrites = agentAfter.writes - agentBefore.writes;
  const ideal = (partitions / 100) * 1;
  log(`fan-out ${partitions} (${budget}): ${wall.toFixed(1)} s; CPU s: ${cpu.text}`);
  return {
    // The newest Job: this run's.
    job: (await c.k8s.kubectl(["-n", NS, "get", "jobs", "--sort-by=.metadata.creationTimestamp", "-o", "name"])).trim().split("\n").pop()!,
    row: row(
      `k8s fan-out: ${partitions.toLocaleString("en")} partitions, parallelism 100, 1 s pods (${budget})`,
      1,
      wall,
      `${(wall / ideal).toFixed(2)}× ideal ${ideal} s; ${(writes / partitions).toFixed(1)} API writes/partition (agent: ${(agentWrites / partitions).toFixed(3)}); agent: CPU ${(agentAfter.cpuSeconds - agentBefore.cpuSeconds).toFixed(1)} s, peak RSS ${peakRssMb(c.agent.pid).toFixed(0)} MB, ${mlflowPer(agentBefore, agentAfter, 1)}; ${cpuOf(wall)}: ${cpu.text}`,
    ),
  };
}

/**
 * The agent's Job made again straight through the API server, with no agent, MLflow or control
 * plane: the harness's own time for the same pods — the floor the agent's figure is measured against.
 */
async function directJob(c: WithAgent, agentJob: string, partitions: number): Promise<Row> {
  const job = JSON.parse(await c.k8s.kubectl(["-n", NS, "get", agentJob, "-o", "json"])) as any;
  // Not the agent's any more: no labels its watches select, no selector or controller labels of the old Job.
  const strip = (labels: Record<string, string> = {}) =>
    Object.fromEntries(Object.entries(labels).filter(([k]) => !k.startsWith("parallels.io/") && !k.startsWith("app.kubernetes.io/") && !k.includes("controller-uid") && !k.includes("job-name")));
  const copy = {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name: "direct", namespace: DIRECT_NS, labels: strip(job.metadata.labels) },
    spec: {
      ...job.spec,
      selector: undefined,
      manualSelector: undefined,
      template: { ...job.spec.template, metadata: { ...job.spec.template.metadata, labels: strip(job.spec.template.metadata.labels) } },
    },
  };
  await c.k8s.kubectl(["create", "namespace", DIRECT_NS]);
  const before = await c.k8s.metrics();
  const cpuBefore = cpuByPart();
  const t0 = performance.now();
  await c.k8s.kubectl(["create", "-f", "-"], { input: JSON.stringify(copy) });
  const deadline = Date.now() + partitions * 1000;
  for (;;) {
    const st = (await c.k8s.request(`/apis/batch/v1/namespaces/${DIRECT_NS}/jobs/direct`)).json<any>().status ?? {};
    const end = (st.conditions ?? []).find((k: any) => (k.type === "Complete" || k.type === "Failed") && k.status === "True");
    if (end?.type === "Failed") throw new Error(`direct Job ${partitions}: failed (${end.reason}: ${end.message})`);
    if (end) break;
    if (Date.now() > deadline) throw new Error(`direct Job ${partitions}: not complete within ${partitions} s: ${JSON.stringify(st)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const wall = (performance.now() - t0) / 1000;
  const cpu = cpuDelta(cpuBefore, cpuByPart());
  const writes = (await c.k8s.metrics()).count({ verbs: WRITE_VERBS }) - before.count({ verbs: WRITE_VERBS });
  const ideal = (partitions / 100) * 1;
  log(`direct Job ${partitions}: ${wall.toFixed(1)} s; CPU s: ${cpu.text}`);
  return row(
    `… the same Job made directly (no agent, MLflow or control plane; ${HIGH_LABEL})`,
    1,
    wall,
    `${(wall / ideal).toFixed(2)}× ideal ${ideal} s; ${(writes / partitions).toFixed(1)} API writes/partition; ${cpuOf(wall)}: ${cpu.text}`,
  );
}

async function throughput(s: Setup, c: WithAgent, name: string, runs: number): Promise<Row[]> {
  const dag = `throughput-${name}`;
  await api(s.env, "PUT", `/v1/dags/${dag}`, { name: dag, nodes: [step(s, name, {})] });
  const before = await c.k8s.metrics();
  const agentBefore = await agentCounters(c.port);
  const cpuBefore = cpuByPart();
  const t0 = performance.now();
  const ids: string[] = [];
  // Submitted at once (16 requests in flight: a client's connection pool).
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < runs) {
        next++;
        ids.push((await api(s.env, "POST", "/v1/runs", { dag })).id);
      }
    }),
  );
  const submitted = (performance.now() - t0) / 1000;
  const done = await Promise.all(ids.map((id) => waitRun(s.env, id, 30 * 60_000)));
  const wall = (performance.now() - t0) / 1000;
  const cpu = cpuDelta(cpuBefore, cpuByPart());
  const failed = done.filter((r) => r.status !== "succeeded");
  if (failed.length) throw new Error(`${failed.length} runs did not succeed: ${failed[0].nodes[0].message}`);
  const tracked = done.filter((r) => r.mlflowRunId && r.nodes[0].mlflowRunId).length;
  const after = await c.k8s.metrics();
  const agentAfter = await agentCounters(c.port);
  // Where the time goes, per run: submit → its Job made (control plane, NATS, agent's preparation
  // with its MLflow runs), Job made → node ended (API server, Job controller, 1 s pods), node
  // ended → run ended (the report back, the decision).
  const ms = (a: string | null, b: string | null) => (a && b ? Date.parse(b) - Date.parse(a) : NaN);
  const seg = (f: (r: any) => number) => {
    const v = done
      .map(f)
      .filter(Number.isFinite)
      .sort((a, b) => a - b);
    return `${(percentile(v, 50) / 1000).toFixed(1)}/${(percentile(v, 99) / 1000).toFixed(1)} s`;
  };
  log(`throughput ${runs}: ${wall.toFixed(1)} s; CPU s: ${cpu.text}`);
  const perMin = runs / (wall / 60);
  const writes = (after.count({ verbs: WRITE_VERBS }) - before.count({ verbs: WRITE_VERBS })) / runs;
  return [
    row(
      `k8s throughput: ${runs} single-node runs at once, 1 s pods, each tracked in MLflow (${HIGH_LABEL})`,
      runs,
      wall,
      `${perMin.toFixed(0)} runs/min (submits took ${submitted.toFixed(1)} s; ${tracked}/${runs} in MLflow); ${writes.toFixed(1)} API writes/run (agent: ${((agentAfter.writes - agentBefore.writes) / runs).toFixed(2)}); agent: CPU ${(agentAfter.cpuSeconds - agentBefore.cpuSeconds).toFixed(1)} s, peak RSS ${peakRssMb(c.agent.pid).toFixed(0)} MB, per run ${mlflowPer(agentBefore, agentAfter, runs)}; ${cpuOf(wall)}: ${cpu.text}`,
    ),
    row(
      "… where a run's time goes, p50/p99",
      runs,
      NaN,
      `submit → Job made ${seg((r) => ms(r.createdAt, r.nodes[0].startedAt))} (control plane, NATS, agent + MLflow); Job → node ended ${seg((r) => ms(r.nodes[0].startedAt, r.nodes[0].finishedAt))} (API server, Job controller, the 1 s pod); node → run ended ${seg((r) => ms(r.nodes[0].finishedAt, r.finishedAt))}`,
    ),
  ];
}

export async function benchKubernetes(): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), "bench-k8s-"));
  let env: Embedded | undefined;
  const rows: Row[] = [];
  try {
    await promisify(execFile)(join(ROOT, "node_modules/.bin/tsx"), [join(ROOT, "agent/build.ts")]);
    env = await startEmbedded({ stateDir: join(dir, "embedded"), adminToken: TOKEN, ports: "free" });
    const mlflow = new MlflowClient({ trackingUri: env.mlflow.url });
    const repo = join(dir, "step.git");
    cpSync(join(ROOT, "test/fixtures/projects/step"), repo, { recursive: true });
    const git = (...args: string[]) => execFileSync("git", ["-c", "user.email=b@example.test", "-c", "user.name=b", ...args], { cwd: repo, encoding: "utf8" }).trim();
    git("init", "-q");
    git("add", ".");
    git("commit", "-q", "-m", "step");
    const { experimentId } = await mlflow.getOrCreateExperiment("bench-inputs");
    const input = await mlflow.createRun({ experimentId, runName: "input" });
    await mlflow.uploadArtifact(input.info.runId, "data/item.txt", "one item", "text/plain");
    const s: Setup = { env, dir, repo, commit: git("rev-parse", "HEAD"), inputRun: input.info.runId };

    if (only.has("default")) {
      const slow = await clusterWithAgent(s, "k8s-default-budget");
      try {
        rows.push((await fanOut(s, slow, "k8s-default-budget", 1000, "components at their default client budgets")).row);
      } finally {
        await slow.stop();
      }
    }
    if (["high", "direct", "large", "runs"].some((x) => only.has(x))) {
      const fast = await clusterWithAgent(s, "k8s-high-budget", HIGH_BUDGET);
      try {
        if (only.has("high") || only.has("direct")) {
          const { row: high, job } = await fanOut(s, fast, "k8s-high-budget", 1000, HIGH_LABEL);
          if (only.has("high")) rows.push(high);
          if (only.has("direct")) rows.push(await directJob(fast, job, 1000));
        }
        if (only.has("large")) rows.push((await fanOut(s, fast, "k8s-high-budget", Number(process.env.BENCH_K8S_LARGE ?? 10_000), HIGH_LABEL)).row);
        if (only.has("runs")) rows.push(...(await throughput(s, fast, "k8s-high-budget", Number(process.env.BENCH_K8S_RUNS ?? 300))));
      } finally {
        await fast.stop();
      }
    }
    return rows;
  } finally {
    await env?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
