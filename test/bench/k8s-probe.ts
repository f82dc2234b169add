/**
 * Where a fan-out's time goes on the harness, without the agent (a tool for tuning the harness
 * and reading kubernetes.bench.ts's rows, not a benchmark of its own): one Indexed Job shaped as
 * the agent makes it (job-spec.ts: init container, native sidecar, step), created straight
 * through the API server of a new cluster, with the components' budgets given as JSON
 * ({@link ComponentTuning}). Prints the wall time, the API requests it cost (apiserver /metrics,
 * by verb and resource) and their mean latency by verb, the CPU seconds of every process
 * (procs.ts) and the scheduler's client-side waits (its /metrics).
 *
 *   PROBE_PARTITIONS=1000 PROBE_PARALLELISM=100 PROBE_TUNING='{"kubeApiQps":1000,"kubeApiBurst":2000}' npx tsx test/bench/k8s-probe.ts
 *
 * Also: `PROBE_DELAY` (a pod's run time, Go duration, default 1s); `PROBE_MINIMAL=1` (pods of one
 * container and nothing else: what the template's size costs); `PROBE_TIMELINE=1` (the Job's
 * status counters as they changed); `PROBE_PODS=1` (watches the pods: median time from a pod's
 * creation to bound, Running, Succeeded and released by the Job controller, and from a pod's
 * end to the next pod's creation).
 */
import { readFileSync } from "node:fs";
import { request } from "node:https";
import { buildJob } from "../../agent/src/executor/kubernetes/job-spec";
import { type ComponentTuning, type K8sCluster, startK8sCluster } from "../../scripts/k8s/harness";
import { cpuByPart, cpuDelta } from "./procs";

const partitions = Number(process.env.PROBE_PARTITIONS ?? 1000);
const parallelism = Number(process.env.PROBE_PARALLELISM ?? 100);
const delay = process.env.PROBE_DELAY ?? "1s";
const tuning = JSON.parse(process.env.PROBE_TUNING ?? "{}") as ComponentTuning;
const NS = "probe";

const c = await startK8sCluster({ name: "probe", log: () => {}, ...tuning });
try {
  await c.kubectl(["create", "namespace", NS]);
  const job = buildJob({
    name: "fanout",
    namespace: NS,
    labels: { "probe.test/job": "fanout" },
    annotations: {},
    partitions,
    parallelism,
    retriesPerIndex: 0,
    noRetryExitCodes: [],
    ttlSecondsAfterFinished: 3600,
    stepImage: "registry.example.test/steps/python:3.11",
    command: "python step.py",
    env: { PARALLELS_TEST_DELAY: delay },
    // As large as the bench's (a run's artifact as the partitioned input, a git project).
    podAttempt: JSON.stringify({
      v: 1,
      trackingUri: "http://127.0.0.1:39123",
      experimentId: "2",
      nodeRunId: "5f0c3a1e9b8d4c7a8e6f1d2c3b4a5968",
      partitions,
      partitionInput: "data",
      partitionRuns: false,
      inputs: { data: { kind: "run", runId: "0a1b2c3d4e5f60718293a4b5c6d7e8f9", path: "", experimentId: "1" } },
      project: { git: "file:///tmp/bench-k8s-AbCdEf/step.git", commit: "3f786850e387550fdab836ed7e6dc881de23001b" },
      logsEverySeconds: 30,
    }),
    agentImage: "registry.example.test/parallels-agent:probe",
    imagePullSecrets: [],
    nodeSelector: {},
    tolerations: [],
  });
  if (process.env.PROBE_MINIMAL) {
    // The smallest pod the stages accept: one container, nothing else — how much the template's size costs.
    const spec = job.spec!.template.spec!;
    job.spec!.template.spec = { restartPolicy: "Never", containers: [{ name: "step", image: spec.containers[0]!.image, env: [{ name: "PARALLELS_TEST_DELAY", value: delay }] }] };
  }
  console.log(`pod template: ${JSON.stringify(job.spec!.template).length} bytes of JSON`);
  const cpuBefore = cpuByPart();
  const before = await c.metrics();
  const t0 = performance.now();
  const res = await c.request(`/apis/batch/v1/namespaces/${NS}/jobs`, { body: job });
  if (res.status !== 201) throw new Error(`create: ${res.status} ${res.text}`);
  const watch = process.env.PROBE_PODS ? watchPods(c, t0) : undefined;
  const timeline: string[] = [];
  let last = "";
  for (;;) {
    const j = (await c.request(`/apis/batch/v1/namespaces/${NS}/jobs/fanout`)).json<any>();
    const s = j.status ?? {};
    const now = `active ${s.active ?? 0} ready ${s.ready ?? 0} succeeded ${s.succeeded ?? 0} failed ${s.failed ?? 0} uncounted ${(s.uncountedTerminatedPods?.succeeded ?? []).length}`;
    if (now !== last) timeline.push(`${((performance.now() - t0) / 1000).toFixed(2)} s  ${now}`);
    last = now;
    if ((s.conditions ?? []).some((k: any) => (k.type === "Complete" || k.type === "Failed") && k.status === "True")) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const wall = (performance.now() - t0) / 1000;
  const cpu = cpuDelta(cpuBefore, cpuByPart());
  watch?.stop();
  const after = await c.metrics();
  console.log(
    `fan-out ${partitions} / ${parallelism}, pods of ${delay}, tuning ${JSON.stringify(tuning)}: ${wall.toFixed(1)} s (ideal ${((partitions / parallelism) * Number.parseFloat(delay)).toFixed(0)} s)`,
  );
  if (process.env.PROBE_TIMELINE) console.log(timeline.join("\n"));
  if (watch) {
    // Per pod, from its creation: bound, Running, Succeeded, finalizer removed (seconds, as this process saw the events).
    const steps = ["bound", "running", "succeeded", "released"] as const;
    const gaps: Record<string, number[]> = {};
    const replaced: number[] = [];
    const byIndex = new Map<number, { created: number; released?: number }[]>();
    for (const p of watch.pods.values()) {
      let prev = p.created;
      for (const k of steps) {
        const at = p[k];
        if (at === undefined) continue;
        gaps[k] = [...(gaps[k] ?? []), at - prev];
        prev = at;
      }
      const list = byIndex.get(p.index) ?? [];
      list.push(p);
      byIndex.set(p.index, list);
    }
    // A slot's idle time: from one pod's Succeeded to the next pod's creation in the Job (any index).
    const created = [...watch.pods.values()].map((p) => p.created).sort((a, b) => a - b);
    for (const p of watch.pods.values()) {
      if (p.succeeded === undefined) continue;
      const next = created.find((t) => t >= p.succeeded!);
      if (next !== undefined) replaced.push(next - p.succeeded);
    }
    const med = (v: number[]) => v.sort((a, b) => a - b)[Math.floor(v.length / 2)] ?? NaN;
    console.log(`pods, median s: created → ${steps.map((k) => `${k} ${med(gaps[k] ?? []).toFixed(2)}`).join(" → ")}; Succeeded → a new pod created ${med(replaced).toFixed(2)}`);
  }
  console.log(`CPU seconds (the probe itself as bench): ${cpu.text}`);
  const diff = new Map<string, number>();
  for (const r of after.requests) {
    const k = `${r.verb} ${r.resource}${r.subresource ? `/${r.subresource}` : ""}`;
    diff.set(k, (diff.get(k) ?? 0) + r.count);
  }
  for (const r of before.requests) {
    const k = `${r.verb} ${r.resource}${r.subresource ? `/${r.subresource}` : ""}`;
    diff.set(k, (diff.get(k) ?? 0) - r.count);
  }
  console.log(
    `API requests: ${[...diff]
      .filter(([, n]) => n > 0)
      .sort((a, b) => b[1] - a[1])
      .map(([k, n]) => `${k} ${n}`)
      .join(", ")}`,
  );
  // The scheduler's client: time spent waiting in its token bucket.
  const sched = await c.kubectl(["--server", `https://127.0.0.1:${c.ports.scheduler}`, "get", "--raw", "/metrics"]);
  const sum = (name: string) => [...sched.matchAll(new RegExp(`^${name}\\{[^}]*\\} (\\S+)`, "gm"))].reduce((s, m) => s + Number(m[1]), 0);
  console.log(`scheduler client waited ${sum("rest_client_rate_limiter_duration_seconds_sum").toFixed(1)} s over ${sum("rest_client_rate_limiter_duration_seconds_count")} requests`);
  const lat = (text: string, verb: string) => {
    const m = [...text.matchAll(new RegExp(`^apiserver_request_duration_seconds_(sum|count)\\{[^}]*verb="${verb}"[^}]*\\} (\\S+)`, "gm"))];
    const s = m.filter((x) => x[1] === "sum").reduce((a, x) => a + Number(x[2]), 0);
    const n = m.filter((x) => x[1] === "count").reduce((a, x) => a + Number(x[2]), 0);
    return { s, n };
  };
  for (const verb of ["POST", "PATCH", "PUT"]) {
    const a = lat(after.text, verb);
    const b = lat(before.text, verb);
    console.log(`apiserver ${verb}: mean ${(((a.s - b.s) / Math.max(1, a.n - b.n)) * 1000).toFixed(1)} ms over ${a.n - b.n}`);
  }
} finally {
  await c.stop();
}

interface PodTimes {
  index: number;
  created: number;
  bound?: number;
  running?: number;
  succeeded?: number;
  released?: number;
}

/** Watches the probe's pods and notes when this process saw each one created, bound, Running, Succeeded and released by the Job controller. */
function watchPods(c: K8sCluster, t0: number): { pods: Map<string, PodTimes>; stop(): void } {
  const pods = new Map<string, PodTimes>();
  const url = new URL(`/api/v1/namespaces/${NS}/pods?watch=1`, c.apiUrl);
  const req = request(url, { headers: { authorization: `Bearer ${c.adminToken}` }, ca: readFileSync(c.caFile) }, (res) => {
    let buf = "";
    res.setEncoding("utf8");
    // Its figures would be partial: say so.
    if (res.statusCode !== 200) console.log(`pod watch: HTTP ${res.statusCode}`);
    res.on("end", () => stopped || console.log("pod watch: ended by the API server before the Job did; the pods' times are partial"));
    res.on("data", (chunk: string) => {
      buf += chunk;
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const now = (performance.now() - t0) / 1000;
        const { type, object: p } = JSON.parse(line) as { type: string; object: any };
        if (type !== "ADDED" && type !== "MODIFIED") {
          if (type !== "DELETED") console.log(`pod watch: ${type} ${JSON.stringify(p).slice(0, 300)}`);
          continue;
        }
        const name = p.metadata.name as string;
        const t = pods.get(name) ?? { index: Number(p.metadata.annotations?.["batch.kubernetes.io/job-completion-index"]), created: now };
        pods.set(name, t);
        if (p.spec.nodeName && t.bound === undefined) t.bound = now;
        if (p.status?.phase === "Running" && t.running === undefined) t.running = now;
        if (p.status?.phase === "Succeeded" && t.succeeded === undefined) t.succeeded = now;
        if (!(p.metadata.finalizers ?? []).length && t.released === undefined && t.succeeded !== undefined) t.released = now;
      }
    });
  });
  let stopped = false;
  req.on("error", (e) => stopped || console.log(`pod watch: ${e.message}`));
  req.end();
  return {
    pods,
    stop() {
      stopped = true;
      req.destroy();
    },
  };
}
