/**
 * `npm run bench` (local part): the local executor at scale, through the embedded default (real
 * control plane under `wrangler dev`, NATS, `mlflow server`, the agent as its own process):
 * - the manifest of a 10,000-item input: one listing of the input folder and `computeManifest`;
 * - one node of 10,000 trivial Python partitions (`by: object`, one item each), parallelism 10,
 *   the agent with `--max-processes 10` (room for 10 step processes, as a user would give it for
 *   a node of parallelism 10): wall time, overhead per partition (wall × slots / partitions, less
 *   the same step run by `xargs -P 10` with no agent, just after), the agent's MLflow requests per partition (its /metrics)
 *   and the D1 round trips of every request the agent made to the control plane (a counting
 *   proxy on loopback sums the control plane's own `Server-Timing: d1` of each answer);
 * - the partition retry of 2 of them: two partitions fail on their first run (`retries: 1`), the
 *   node's second attempt runs only those two.
 *
 * `BENCH_LOCAL_PARTITIONS` (default 10000) sizes the node; `BENCH_LOCAL_SMALL` (default 200, 0:
 * off) adds the same node at that size first, so the D1 and MLflow figures can be compared across
 * sizes; `BENCH_LOCAL_MAX_PROCESSES` (default 10) is the agent's `--max-processes`.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, request, type Server } from "node:http";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { computeManifest } from "../../agent/src/executor/shared/manifest";
import { listFiles } from "../../agent/src/executor/shared/artifacts";
import { startAgent, type AgentProcess } from "../../scripts/local/agent";
import { freePort } from "../../scripts/local/control-plane";
import { type Embedded, startEmbedded } from "../../scripts/local/embedded";
import { MlflowClient } from "../../proto/mlflow";
import { nodeRuns } from "../support/e2e-mlflow";
import { ensureUiBuilt } from "../../scripts/local/ui-build";
import { cpuByPart, cpuDelta } from "./procs";
import { percentile, type summarize } from "./stats";

type Row = ReturnType<typeof summarize>;
const TOKEN = "bench-local-token";
const CORES = availableParallelism();
const LARGE = Number(process.env.BENCH_LOCAL_PARTITIONS ?? 10_000);
const SMALL = Number(process.env.BENCH_LOCAL_SMALL ?? 200);
const SLOTS = Number(process.env.BENCH_LOCAL_MAX_PROCESSES ?? 10);
const PARALLELISM = 10;
/** The two partitions that fail on their first run (scaled into the node). */
const failing = (n: number) => [Math.floor(n / 3), Math.floor((2 * n) / 3) + 1];
const log = (line: string) => process.stderr.write(`[bench local] ${line}\n`);
const row = (label: string, n: number, wallMs: number, p99Ms: number, d1: string, target: string): Row => ({
  label,
  n,
  cpuMedian: NaN,
  cpuP99: NaN,
  wallMedian: wallMs,
  wallP99: p99Ms,
  d1,
  target,
});

/** The trivial step: fails with 5 on its first run when its index is in `fail` (a marker says it ran). */
const STEP_PY = [
  "import os, pathlib, sys",
  "i = os.environ.get('PARALLELS_PARTITION_INDEX', '0')",
  "if i in sys.argv[1].split(','):",
  "    marker = pathlib.Path(sys.argv[2], i)",
  "    if not marker.exists():",
  "        marker.write_text('ran')",
  "        sys.exit(5)",
].join("\n");

/**
 * An HTTP proxy on loopback in front of the control plane that sums the D1 round trips the
 * control plane reports for each answer (`Server-Timing: d1;…;dur=<n>`, control/src/app.ts).
 */
async function d1CountingProxy(target: string): Promise<{ url: string; trips: () => number; requests: () => number; close(): Promise<void> }> {
  const to = new URL(target);
  let trips = 0;
  let requests = 0;
  const server: Server = createServer((req, res) => {
    const up = request({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: { ...req.headers, host: to.host } }, (r) => {
      requests++;
      const timing = ([] as string[]).concat(r.headers["server-timing"] ?? []).join(",");
      const m = /d1;[^,]*dur=(\d+)/.exec(timing);
      if (m) trips += Number(m[1]);
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on("error", () => {
      res.writeHead(502);
      res.end();
    });
    req.pipe(up);
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${port}`,
    trips: () => trips,
    requests: () => requests,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

async function api(env: Embedded, method: string, path: string, body?: unknown) {
  const send = () =>
    fetch(env.control.url + path, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  // A GET is asked again when `wrangler dev` drops the connection (seen under load: "other side closed").
  let res: Response;
  for (let tries = 1; ; tries++) {
    try {
      res = await send();
      break;
    } catch (e) {
      if (method !== "GET" || tries >= 5) throw e;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  const json = (await res.json()) as any;
  if (res.status >= 300) throw new Error(`${method} ${path} → ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** The agent's MLflow requests by endpoint (its /metrics). */
async function mlflowRequests(port: number): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return new Map([...text.matchAll(/^parallels_agent_mlflow_requests_total\{endpoint="([^"]*)"\} (\d+)/gm)].map((m) => [m[1]!, Number(m[2])]));
}

function perPartition(before: Map<string, number>, after: Map<string, number>, n: number): { total: number; text: string } {
  const d = [...after].map(([k, v]) => [k, (v - (before.get(k) ?? 0)) / n] as const).filter(([, v]) => v > 0);
  const total = d.reduce((a, [, v]) => a + v, 0);
  return {
    total,
    text: `${total.toFixed(3)} (${d
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${v.toFixed(3)}`)
      .join(", ")})`,
  };
}

/**
 * The floor: the same step run `n` times by `xargs -P <slots>` (`bash -c "python3 step.py …"`, as
 * the agent runs it; no agent, no MLflow), in ms per step per slot — what a partition would cost
 * if the agent cost nothing, at the machine's load of the moment.
 */
function stepFloor(dir: string, pythonBinDir: string, n: number, slots: number): number {
  const t = performance.now();
  execFileSync("sh", ["-c", `seq ${n} | xargs -P ${slots} -I{} bash -c "python3 step.py '' /nonexistent"`], { cwd: dir, env: { ...process.env, PATH: `${pythonBinDir}:${process.env.PATH}` } });
  return ((performance.now() - t) * slots) / n;
}

export async function benchLocalFanout(): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), "parallels-bench-local-"));
  const rows: Row[] = [];
  let env: Embedded | undefined;
  let agent: AgentProcess | undefined;
  let proxy: Awaited<ReturnType<typeof d1CountingProxy>> | undefined;
  try {
    const projects = join(dir, "projects");
    const project = join(projects, "trivial");
    mkdirSync(project, { recursive: true });
    writeFileSync(
      join(project, "MLproject"),
      'name: trivial\nentry_points:\n  main:\n    parameters:\n      fail: {type: string, default: ""}\n      markers: {type: string, default: ""}\n    command: "python3 step.py \'{fail}\' {markers}"\n',
    );
    writeFileSync(join(project, "step.py"), `${STEP_PY}\n`);
    const dataOf = (n: number) => {
      const d = join(projects, `data-${n}`);
      mkdirSync(d, { recursive: true });
      for (let i = 0; i < n; i++) writeFileSync(join(d, `item-${String(i).padStart(5, "0")}.txt`), `item ${i}\n`);
      return d;
    };
    const large = dataOf(LARGE);

    // The manifest: one listing of the folder, then the partitions (5 samples).
    const manifestMs: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      const files = await listFiles(large);
      const m = computeManifest({ by: "object", input: "data" }, PARALLELISM, files);
      manifestMs.push(performance.now() - t);
      if (m.count !== LARGE) throw new Error(`manifest: ${m.count} partitions, expected ${LARGE}`);
    }
    manifestMs.sort((a, b) => a - b);
    rows.push(row(`local: manifest of ${LARGE.toLocaleString("en")} items (one listing)`, 5, percentile(manifestMs, 50), percentile(manifestMs, 99), "0", "once per attempt, < 1 s"));

    await ensureUiBuilt(log); // the control plane serves it
    env = await startEmbedded({ stateDir: join(dir, "embedded"), adminToken: TOKEN, ports: "free", cronTriggers: false });
    proxy = await d1CountingProxy(env.control.url);
    const mlflowClient = new MlflowClient({ trackingUri: env.mlflow.url });
    const cluster = await api(env, "POST", "/v1/clusters", { name: "local", kind: "local" });
    const port = await freePort();
    agent = await startAgent({
      controlPlaneUrl: proxy.url,
      mlflowUrl: env.mlflow.url,
      stateDir: join(dir, "agent"),
      projectsRoot: projects,
      pythonBinDir: env.mlflow.binDir,
      bootstrapToken: cluster.bootstrap.token,
      extraArgs: ["--health-port", String(port), "--max-processes", String(SLOTS), "--pull-expires-seconds", "5"],
    });
    for (let i = 0; i < 300 && (await api(env, "GET", "/v1/clusters/local")).status !== "online"; i++) await new Promise((r) => setTimeout(r, 200));

    for (const n of [SMALL, LARGE].filter((x) => x > 0)) {
      const data = n === LARGE ? large : dataOf(n);
      const markers = join(dir, `markers-${n}`);
      mkdirSync(markers);
      const dag = `local-fanout-${n}`;
      const fail = failing(n);
      await api(env, "PUT", `/v1/dags/${dag}`, {
        name: dag,
        nodes: [
          {
            id: "fan",
            project: { uri: project },
            parameters: { fail: fail.join(","), markers },
            inputs: { data: { uri: data } },
            partition: { by: "object", input: "data" },
            parallelism: PARALLELISM,
            retries: 1,
          },
        ],
      });
      const mlflowBefore = await mlflowRequests(port);
      const tripsBefore = proxy.trips();
      const requestsBefore = proxy.requests();
      const cpuBefore = cpuByPart();
      const load0 = loadavg()[0]!.toFixed(2);
      const t0 = performance.now();
      const t0Epoch = Date.now();
      const { id } = await api(env, "POST", "/v1/runs", { dag });
      let runView: any;
      for (;;) {
        runView = await api(env, "GET", `/v1/runs/${id}`);
        const node = runView.nodes[0];
        if (["succeeded", "failed", "cancelled"].includes(runView.status)) break;
        if (performance.now() - t0 > 3_600_000) throw new Error(`run ${id} did not finish within an hour: ${JSON.stringify(node)}`);
        await new Promise((r) => setTimeout(r, 500));
      }
      const end = performance.now();
      const node = runView.nodes[0];
      if (runView.status !== "succeeded" || node.attempt !== 2) throw new Error(`fan-out ${n}: ${runView.status}, attempt ${node.attempt}: ${node.message}`);
      const cpu = cpuDelta(cpuBefore, cpuByPart());
      const mlflow = perPartition(mlflowBefore, await mlflowRequests(port), n);
      const trips = proxy.trips() - tripsBefore;
      const requests = proxy.requests() - requestsBefore;
      // The attempts' ends as the agent recorded them on their MLflow runs (this machine's clock):
      // the first attempt from the submit, the retry from the first attempt's end (dispatch included).
      const [a1, a2] = (await nodeRuns(mlflowClient, id, dag)).get("fan")!;
      const wall = a1!.info.endTime! - t0Epoch;
      const retry = a2!.info.endTime! - a1!.info.endTime!;
      if (a2!.data.tags["parallels.partitions.ran"] !== fail.join(",")) throw new Error(`the retry ran ${a2!.data.tags["parallels.partitions.ran"]}, not ${fail.join(",")}`);
      const slots = Math.min(SLOTS, PARALLELISM, CORES * 100);
      const perSlot = (wall * slots) / n;
      const floor = stepFloor(project, env.mlflow.binDir, 500, slots);
      log(`the step alone (xargs -P ${slots}, 500 runs, just after): ${floor.toFixed(0)} ms per step per slot`);
      log(`fan-out ${n}: first attempt ${(wall / 1000).toFixed(1)} s, retry ${(retry / 1000).toFixed(1)} s, run ${((end - t0) / 1000).toFixed(1)} s; CPU s: ${cpu.text}`);
      rows.push(
        row(
          `local: ${n.toLocaleString("en")} trivial partitions, parallelism ${PARALLELISM}, --max-processes ${SLOTS} (first attempt)`,
          1,
          wall,
          NaN,
          `${trips} (${requests} agent requests)`,
          `${n >= 10_000 ? "< 10 min; " : ""}${perSlot.toFixed(0)} ms/partition/slot (wall × ${slots} / ${n}); the step alone by xargs -P ${slots}: ${floor.toFixed(0)} ms, so ${(perSlot - floor).toFixed(0)} ms overhead/partition/slot; ${mlflow.text} MLflow requests/partition; D1 trips: all of the agent's requests during the run; load ${load0}, ${CORES} cores; CPU s ${cpu.text}`,
        ),
      );
      rows.push(row(`local: partition retry of 2 of ${n.toLocaleString("en")}`, 1, retry, NaN, "—", "attempt 2 runs only the 2 failed partitions (their items only); from attempt 1's end"));
    }
  } finally {
    await agent?.stop();
    await proxy?.close();
    await env?.stop();
    if (process.env.BENCH_LOCAL_KEEP === "1") log(`kept ${dir} (BENCH_LOCAL_KEEP)`);
    else rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { printTable, machineConditions } = await import("./stats");
  console.log(`machine: ${machineConditions()}`);
  printTable(await benchLocalFanout());
}
