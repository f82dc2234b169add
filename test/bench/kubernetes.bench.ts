/**
 * The Kubernetes executor at scale, on the KWOK harness (KWOK stands in for kubelets: a pod
 * "runs" for the time its `PARALLELS_TEST_DELAY` says), through the real control plane, NATS,
 * MLflow and the agent as its own process (the bundle an image ships):
 * - fan-out: one node of 1,000 partitions, parallelism 100, pods of 1 s (ideal 10 s) — at the
 *   controller-manager's default client budget (`--kube-api-qps 20 --kube-api-burst 30`) and at a
 *   budget high enough that the API server, not the Job controller's client, is the limit; and
 *   10,000 partitions at that budget (ideal 100 s);
 * - throughput: 300 single-node DAG runs submitted at once, pods of 1 s, each tracked in MLflow.
 * Each with wall time against the ideal, API writes (apiserver /metrics) per partition or run —
 * all of them, and the agent's own — the agent's CPU seconds and peak RSS.
 */
import { execFile, execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { MlflowClient } from "../../proto/mlflow";
import { type K8sCluster, startK8sCluster, WRITE_VERBS } from "../../scripts/k8s/harness";
import { startAgent, type AgentProcess } from "../../scripts/local/agent";
import { freePort, ROOT } from "../../scripts/local/control-plane";
import { type Embedded, startEmbedded } from "../../scripts/local/embedded";
import { percentile, type summarize } from "./stats";

type Row = ReturnType<typeof summarize>;
const TOKEN = "bench-k8s-token";
const NS = "parallels-bench";
const log = (line: string) => process.stderr.write(`[bench k8s] ${line}\n`);

interface Setup {
  env: Embedded;
  dir: string;
  repo: string;
  commit: string;
  inputRun: string;
}

/** The agent's own counters from its /metrics. */
async function agentCounters(port: number): Promise<{ writes: number; cpuSeconds: number }> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const sum = (re: RegExp) => [...text.matchAll(re)].reduce((s, m) => s + Number(m[1]), 0);
  return {
    writes: sum(/^parallels_agent_kubernetes_requests_total\{verb="(?:POST|PUT|PATCH|DELETE)"\} (\d+)/gm),
    cpuSeconds: sum(/^parallels_agent_process_cpu_seconds_total (\S+)/gm),
  };
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

/** A cluster of the harness with this Job-controller client budget, registered at the control plane with an agent of its own. */
async function clusterWithAgent(s: Setup, name: string, qps?: { qps: number; burst: number }): Promise<{ k8s: K8sCluster; agent: AgentProcess; port: number; stop(): Promise<void> }> {
  const k8s = await startK8sCluster({ name, runDir: join(s.dir, name), log: () => {}, ...(qps ? { kubeApiQps: qps.qps, kubeApiBurst: qps.burst } : {}) });
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

/** One node of `partitions` (hash buckets over a one-file input), parallelism 100, pods of 1 s. */
async function fanOut(s: Setup, c: Awaited<ReturnType<typeof clusterWithAgent>>, name: string, partitions: number, budget: string): Promise<Row> {
  const dag = `fanout-${name}-${partitions}`;
  await api(s.env, "PUT", `/v1/dags/${dag}`, { name: dag, nodes: [step(s, name, { partition: { by: "hash", input: "data", partitions }, parallelism: 100, inputs: { data: { run: s.inputRun } } })] });
  const before = await c.k8s.metrics();
  const agentBefore = await agentCounters(c.port);
  const t0 = performance.now();
  const { id } = await api(s.env, "POST", "/v1/runs", { dag });
  const run = await waitRun(s.env, id, partitions * 1000);
  const wall = (performance.now() - t0) / 1000;
  if (run.status !== "succeeded") throw new Error(`fan-out ${partitions}: ${run.status} ${run.nodes[0].message}`);
  const after = await c.k8s.metrics();
  const agentAfter = await agentCounters(c.port);
  const writes = after.count({ verbs: WRITE_VERBS }) - before.count({ verbs: WRITE_VERBS });
  const agentWrites = agentAfter.writes - agentBefore.writes;
  const ideal = (partitions / 100) * 1;
  log(`fan-out ${partitions} (${budget}): ${wall.toFixed(1)} s`);
  return {
    label: `k8s fan-out: ${partitions.toLocaleString("en")} partitions, parallelism 100, 1 s pods (${budget})`,
    n: 1,
    cpuMedian: NaN,
    cpuP99: NaN,
    wallMedian: wall * 1000,
    wallP99: NaN,
    d1: "—",
    target: `${(wall / ideal).toFixed(2)}× ideal ${ideal} s; ${(writes / partitions).toFixed(1)} API writes/partition (agent: ${(agentWrites / partitions).toFixed(3)}); agent CPU ${(agentAfter.cpuSeconds - agentBefore.cpuSeconds).toFixed(1)} s, peak RSS ${peakRssMb(c.agent.pid).toFixed(0)} MB`,
  };
}

async function throughput(s: Setup, c: Awaited<ReturnType<typeof clusterWithAgent>>, name: string, runs: number): Promise<Row[]> {
  const dag = `throughput-${name}`;
  await api(s.env, "PUT", `/v1/dags/${dag}`, { name: dag, nodes: [step(s, name, {})] });
  const before = await c.k8s.metrics();
  const agentBefore = await agentCounters(c.port);
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
  log(`throughput ${runs}: ${wall.toFixed(1)} s`);
  const perMin = runs / (wall / 60);
  return [
    {
      label: `k8s throughput: ${runs} single-node runs at once, 1 s pods, each tracked in MLflow`,
      n: runs,
      cpuMedian: NaN,
      cpuP99: NaN,
      wallMedian: wall * 1000,
      wallP99: NaN,
      d1: "—",
      target: `${perMin.toFixed(0)} runs/min (submits took ${submitted.toFixed(1)} s; ${tracked}/${runs} in MLflow); ${((after.count({ verbs: WRITE_VERBS }) - before.count({ verbs: WRITE_VERBS })) / runs).toFixed(1)} API writes/run (agent: ${((agentAfter.writes - agentBefore.writes) / runs).toFixed(2)}); agent CPU ${(agentAfter.cpuSeconds - agentBefore.cpuSeconds).toFixed(1)} s, peak RSS ${peakRssMb(c.agent.pid).toFixed(0)} MB`,
    },
    {
      label: "… where a run's time goes, p50/p99",
      n: runs,
      cpuMedian: NaN,
      cpuP99: NaN,
      wallMedian: NaN,
      wallP99: NaN,
      d1: "—",
      target: `submit → Job made ${seg((r) => ms(r.createdAt, r.nodes[0].startedAt))} (control plane, NATS, agent + MLflow); Job → node ended ${seg((r) => ms(r.nodes[0].startedAt, r.nodes[0].finishedAt))} (API server, Job controller, the 1 s pod); node → run ended ${seg((r) => ms(r.nodes[0].finishedAt, r.finishedAt))}`,
    },
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

    const slow = await clusterWithAgent(s, "k8s-default-budget");
    try {
      rows.push(await fanOut(s, slow, "k8s-default-budget", 1000, "controller-manager at its default 20 QPS / 30 burst"));
    } finally {
      await slow.stop();
    }
    const fast = await clusterWithAgent(s, "k8s-high-budget", { qps: 1000, burst: 2000 });
    try {
      rows.push(await fanOut(s, fast, "k8s-high-budget", 1000, "controller-manager at 1000 QPS / 2000 burst"));
      rows.push(await fanOut(s, fast, "k8s-high-budget", Number(process.env.BENCH_K8S_LARGE ?? 10_000), "1000 QPS / 2000 burst"));
      rows.push(...(await throughput(s, fast, "k8s-high-budget", Number(process.env.BENCH_K8S_RUNS ?? 300))));
    } finally {
      await fast.stop();
    }
    return rows;
  } finally {
    await env?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
