/**
 * An on-prem site whose only way out is a corporate proxy, for real: the site is a network
 * namespace made here (only its loopback; its 127.0.0.1:3128 is socat, wired through a Unix socket
 * to Debian's tinyproxy on the host's 127.0.0.1, which asks for Basic auth and CONNECTs only to
 * the three ports the site may reach). The agent runs inside with HTTPS_PROXY/HTTP_PROXY and an
 * empty NO_PROXY, reaches the control plane at `https://` and NATS at `wss://` — both behind a TLS
 * edge with a certificate of a CA made here, trusted through NODE_EXTRA_CA_CERTS only — and
 * MLflow at `http://`. Everything else is the embedded default (nats-server, `mlflow server`,
 * `wrangler dev`) on the host's loopback.
 *
 * First the test shows that nothing of the host is reachable from inside except the proxy; then a
 * DAG runs to success with the agent inside, and tinyproxy's log holds the CONNECTs (control
 * plane, NATS's WebSocket, MLflow) and the step's own MLflow requests (forwarded `http://`).
 *
 * Then the same for the on-prem `ezmeral` Kubernetes cluster: a second site holds the harness
 * cluster itself and an agent with the Kubernetes executor (see the second `describe`).
 */
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSite, type Site } from "../../scripts/hybrid/site";
import { startTinyproxy, type Tinyproxy } from "../../scripts/hybrid/tinyproxy";
import { startTlsEdge, type TlsEdge } from "../../scripts/hybrid/tls-edge";
import { ensureK8sBinaries, type K8sCluster, startK8sCluster } from "../../scripts/k8s/harness";
import { DEFAULT_NODES, GPU_RESOURCE, POOL_LABEL } from "../../scripts/k8s/nodes";
import { makePki, type Pki } from "../../scripts/k8s/pki";
import { startAgent, type AgentProcess } from "../../scripts/local/agent";
import { ROOT } from "../../scripts/local/control-plane";
import { startEmbedded, type Embedded } from "../../scripts/local/embedded";
import { MlflowClient } from "../../proto/mlflow";
import { isTerminalRun } from "../../proto/status";
import { childrenOf } from "../support/e2e-mlflow";
import { AGENT_NAMESPACE, type AgentChartInstall, installAgentChart } from "./agent-chart";
import { stepProjectInGit } from "./k8s-site";
import { HYBRID_RUN_DIR_PREFIX } from "./support";

const TOKEN = "hybrid-admin-token";
/** The proxy's Basic auth: the agent gets it in its proxy URL and must never log the password. */
const PROXY_USER = "site-agent";
const PROXY_PASSWORD = "proxy-Pa55-never-logged";
const NODE = join(ROOT, "node_modules/.bin/node");

let runDir: string;
let projects: string;
let env: Embedded;
let pki: Pki;
let natsEdge: TlsEdge;
let controlEdge: TlsEdge;
let proxy: Tinyproxy;
let site: Site;
let agent: AgentProcess | undefined;
let ezmeralAgent: AgentProcess | undefined;
const cleanups: (() => Promise<unknown>)[] = [];
const port = (url: string) => Number(new URL(url).port);

async function api(method: string, path: string, body?: unknown) {
  const res = await fetch(env.control.url + path, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

/** The end of each running agent's log, for a timeout's message. */
const agentLogs = () =>
  [agent, ezmeralAgent]
    .filter((a) => a !== undefined)
    .map((a) => `; agent log ${a.logFile}:\n${readFileSync(a.logFile, "utf8").split("\n").slice(-30).join("\n")}`)
    .join("");

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${agentLogs()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * The environment of an agent inside `inside`: every request through its proxy (with the proxy's
 * Basic auth) and the test CA trusted. Both cases: Python reads the lower-case ones first (an
 * empty one would unset the other). NO_PROXY is empty, as every service here is on 127.0.0.1 —
 * a site's usual `127.0.0.1` entry would send the agent straight to the refused ports. The steps
 * inherit the variables; MLflow's Python client would otherwise ask the proxy for
 * config.mlflow-telemetry.io:443 (the local agent's test caught it: its CONNECTs are checked exactly).
 */
function siteAgentEnv(inside: Site): Record<string, string> {
  const proxyUrl = `http://${PROXY_USER}:${PROXY_PASSWORD}@127.0.0.1:${inside.proxyPort}`;
  return {
    HTTPS_PROXY: proxyUrl,
    https_proxy: proxyUrl,
    HTTP_PROXY: proxyUrl,
    http_proxy: proxyUrl,
    NO_PROXY: "",
    no_proxy: "",
    NODE_EXTRA_CA_CERTS: pki.caCert,
    MLFLOW_DISABLE_TELEMETRY: "true",
  };
}

/**
 * From inside a site (or the host, with `undefined`): a TCP connect to each port
 * of 127.0.0.1 ("connected" or the error code) and a fetch of `url` ("answered <status>" or the
 * error's cause code). No proxy variables: a direct attempt.
 */
function probe(inside: Site | undefined, ports: Record<string, number>, url: string): Record<string, string> {
  const script = `
    const net = require("node:net");
    const ports = JSON.parse(process.env.PROBE_PORTS);
    const out = {};
    const tcp = (name, port) => new Promise((done) => {
      const s = net.connect(port, "127.0.0.1");
      s.setTimeout(5000);
      s.on("connect", () => { out[name] = "connected"; s.destroy(); done(); });
      s.on("timeout", () => { out[name] = "timeout"; s.destroy(); done(); });
      s.on("error", (e) => { out[name] = e.code; done(); });
    });
    (async () => {
      await Promise.all(Object.entries(ports).map(([n, p]) => tcp(n, p)));
      try { out.fetch = "answered " + (await fetch(process.env.PROBE_URL, { signal: AbortSignal.timeout(5000) })).status; }
      catch (e) { out.fetch = (e.cause && e.cause.code) || e.name; }
      console.log(JSON.stringify(out));
    })();`;
  const probeEnv = { PATH: process.env.PATH ?? "/usr/bin:/bin", PROBE_PORTS: JSON.stringify(ports), PROBE_URL: url, NODE_EXTRA_CA_CERTS: pki.caCert };
  const r = inside ? inside.exec([NODE, "-e", script], { env: probeEnv }) : spawnSync(NODE, ["-e", script], { encoding: "utf8", env: probeEnv, timeout: 30_000 });
  if (r.status !== 0) throw new Error(`probe failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim()) as Record<string, string>;
}

beforeAll(async () => {
  runDir = `${HYBRID_RUN_DIR_PREFIX}${process.pid}`;
  rmSync(runDir, { recursive: true, force: true });
  mkdirSync(runDir, { recursive: true, mode: 0o700 });
  cleanups.push(async () => rmSync(runDir, { recursive: true, force: true }));
  projects = join(runDir, "projects");
  cpSync(join(ROOT, "test/fixtures/projects/step"), join(projects, "step"), { recursive: true });
  cpSync(join(ROOT, "test/fixtures/projects/mlflow-step"), join(projects, "mlflow-step"), { recursive: true });

  env = await startEmbedded({ stateDir: join(runDir, "embedded"), adminToken: TOKEN, ports: "free" });
  cleanups.push(() => env.stop());
  pki = await makePki(join(runDir, "pki"));
  natsEdge = await startTlsEdge(runDir, { name: "nats-ws", cert: pki.servingCert, key: pki.servingKey, targetPort: port(env.controlVars.NATS_WS_URL!) });
  cleanups.push(() => natsEdge.stop());
  controlEdge = await startTlsEdge(runDir, { name: "control", cert: pki.servingCert, key: pki.servingKey, targetPort: port(env.control.url) });
  cleanups.push(() => controlEdge.stop());
  proxy = await startTinyproxy(runDir, { connectPorts: [controlEdge.port, natsEdge.port, port(env.mlflow.url)], user: PROXY_USER, password: PROXY_PASSWORD });
  cleanups.push(() => proxy.stop());
  site = await createSite(runDir, { hostProxyPort: proxy.port });
  cleanups.push(() => site.destroy());
}, 600_000);

afterAll(async () => {
  await agent?.stop();
  for (const cleanup of cleanups.reverse()) await cleanup().catch((err) => console.error(`[hybrid] cleanup failed: ${(err as Error).message}`));
}, 120_000);

describe("an on-prem site whose only way out is a proxy", () => {
  it("direct connections from inside the site fail: NATS (TCP and WebSocket), the control plane and MLflow are refused; only the proxy answers", () => {
    // The site has its loopback and nothing else: no other interface, no route.
    const links = JSON.parse(site.exec(["ip", "-j", "addr"]).stdout) as { ifname: string; addr_info: { local: string }[] }[];
    expect(links.map((l) => [l.ifname, l.addr_info.map((a) => a.local).sort()])).toEqual([["lo", ["127.0.0.1", "::1"]]]);
    expect(site.exec(["ip", "route"]).stdout.trim()).toBe("");

    const ports = {
      nats: port(env.natsUrl),
      natsWebSocket: port(env.controlVars.NATS_WS_URL!),
      natsWss: natsEdge.port,
      controlPlane: port(env.control.url),
      controlPlaneHttps: controlEdge.port,
      mlflow: port(env.mlflow.url),
    };
    const controlHealth = `https://127.0.0.1:${controlEdge.port}/healthz`;
    // From the host every one of them is up (so a refusal inside is the site's isolation).
    const host = probe(undefined, ports, controlHealth);
    expect(host).toEqual({ ...Object.fromEntries(Object.keys(ports).map((k) => [k, "connected"])), fetch: expect.stringMatching(/^answered \d{3}$/) });
    const inside = probe(site, { ...ports, proxy: site.proxyPort }, controlHealth);
    expect(inside).toEqual({ ...Object.fromEntries(Object.keys(ports).map((k) => [k, "ECONNREFUSED"])), proxy: "connected", fetch: "ECONNREFUSED" });
  });

  it("the agent inside registers, pulls over wss and runs a DAG through the proxy (CONNECTs to the control plane, NATS's WebSocket and MLflow in tinyproxy's log)", async () => {
    const cluster = await api("POST", "/v1/clusters", { name: "onprem", kind: "local", labels: { site: "onprem" } });
    expect(cluster.status).toBe(201);
    agent = await startAgent({
      controlPlaneUrl: `https://127.0.0.1:${controlEdge.port}`,
      mlflowUrl: env.mlflow.url,
      stateDir: join(runDir, "agent"),
      projectsRoot: projects,
      pythonBinDir: env.mlflow.binDir,
      bootstrapToken: cluster.body.bootstrap.token,
      prefix: site.prefix,
      extraArgs: ["--nats-url", `wss://127.0.0.1:${natsEdge.port}`, "--pull-expires-seconds", "5", "--logs-every-seconds", "1"],
      env: siteAgentEnv(site),
    });
    await waitFor("the agent to register through the proxy", async () => (await api("GET", "/v1/clusters/onprem")).body.status === "online");

    const dag = {
      name: "onprem-measure",
      nodes: [
        { id: "measure", cluster: "onprem", project: { uri: join(projects, "mlflow-step") }, parameters: { value: 42 } },
        { id: "report", cluster: "onprem", project: { uri: join(projects, "step") }, inputs: { measured: { node: "measure" } } },
      ],
    };
    expect((await api("PUT", `/v1/dags/${dag.name}`, dag)).status).toBeLessThan(300);
    const submitted = await api("POST", "/v1/runs", { dag: dag.name });
    expect(submitted.status).toBe(201);
    const run = await waitFor(
      "the run to finish",
      async () => {
        const r = (await api("GET", `/v1/runs/${submitted.body.id}`)).body;
        return isTerminalRun(r.status) ? r : undefined;
      },
      150_000,
    );
    expect(run.nodes.map((n: any) => [n.nodeId, n.status])).toEqual([
      ["measure", "succeeded"],
      ["report", "succeeded"],
    ]);
    expect(run.status).toBe("succeeded");

    // MLflow (read from the host) holds what the step logged itself, through the proxy, and the
    // report step saw the measure step's outputs (downloaded by the agent, through the proxy).
    const mlflow = new MlflowClient({ trackingUri: env.mlflow.url });
    const experiment = await mlflow.getExperimentByName(dag.name);
    const nodeRuns = await mlflow.searchAllRuns({ experimentIds: [experiment!.experimentId], filter: `tags.\`parallels.runId\` = '${submitted.body.id}' and tags.\`parallels.role\` = 'node'` });
    const byNode = new Map(nodeRuns.map((r) => [r.data.tags["parallels.nodeId"], r]));
    const measure = byNode.get("measure")!;
    expect(measure.data.metrics.find((m) => m.key === "measured")?.value).toBe(42);
    expect(measure.data.tags["measured.proxy"]).toBe(`127.0.0.1:${site.proxyPort}`);
    const report = byNode.get("report")!;
    const outTxt = (await mlflow.listArtifactsRecursive(report.info.runId)).find((f) => f.path.endsWith("out.txt"));
    expect(await mlflow.downloadArtifactText(report.info.runId, outTxt!.path)).toContain("measured.txt");

    // The proxy saw it all: CONNECT tunnels of the agent (fetch and the WebSocket) to each
    // service, and the step's MLflow calls forwarded as plain http:// requests.
    // Exactly these: nothing else tried to leave the site.
    const connects = new Set(proxy.connects());
    expect(connects).toEqual(new Set([`127.0.0.1:${controlEdge.port}`, `127.0.0.1:${natsEdge.port}`, `127.0.0.1:${port(env.mlflow.url)}`]));
    expect(proxy.forwarded().filter((u) => u.startsWith(`${env.mlflow.url}/api/2.0/mlflow/runs/log-metric`)).length).toBeGreaterThan(0);

    // The agent's log names the proxy without its password, and NATS over WebSocket.
    const log = readFileSync(agent.logFile, "utf8");
    expect(log).not.toContain(PROXY_PASSWORD);
    const lines = log
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, any>);
    expect(lines.find((l) => l.msg === "requests go through the proxy")).toMatchObject({
      proxy: { https: `http://***:***@127.0.0.1:${site.proxyPort}`, http: `http://***:***@127.0.0.1:${site.proxyPort}`, noProxy: "" },
      extraCaCerts: pki.caCert,
    });
    expect(lines.find((l) => l.msg === "connected to NATS")).toMatchObject({ transport: "websocket", servers: [`wss://127.0.0.1:${natsEdge.port}`] });
  }, 240_000);
});

/**
 * The on-prem `ezmeral` cluster inside a site of its own: its etcd, API server, controllers and
 * KWOK run in the site's network namespace (the harness's command prefix), its API server on that
 * namespace's 127.0.0.1 only, and its agent — installed with the printed `helm` line and
 * values-ezmeral.yaml, helm and kubectl run inside too — uses the Kubernetes executor against it.
 * The site has a tinyproxy of its own, so its log is this agent's alone.
 *
 * KWOK stands in for kubelets: the Jobs' pods are faked, so the work pod's programs (`pod fetch`,
 * `pod upload`, the step's Python) never run. What goes through the proxy is the agent's own
 * traffic — registration and events to the control plane, NATS over wss, the MLflow runs it makes
 * and the input listing it partitions. Its Kubernetes client (node:https, which reads no proxy
 * variable) reaches the API server directly on the site's loopback, as an agent reaches its own
 * cluster; the proxy's log, checked exactly, shows none of that traffic went out.
 */
describe("the on-prem ezmeral cluster inside the proxied site (KWOK stands in for kubelets)", () => {
  let ezSite: Site;
  let ezProxy: Tinyproxy;
  let k8s: K8sCluster;
  let chart: AgentChartInstall;
  let bootstrapToken: string;
  let stepProject: { uri: string; version: string };
  let inputRun: string;
  const ezCleanups: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    const dir = join(runDir, "ezmeral");
    mkdirSync(dir, { recursive: true });
    ezProxy = await startTinyproxy(runDir, {
      name: "tinyproxy-ezmeral",
      connectPorts: [controlEdge.port, natsEdge.port, port(env.mlflow.url)],
      user: PROXY_USER,
      password: PROXY_PASSWORD,
    });
    ezCleanups.push(() => ezProxy.stop());
    ezSite = await createSite(runDir, { hostProxyPort: ezProxy.port });
    ezCleanups.push(() => ezSite.destroy());
    k8s = await startK8sCluster({
      name: "ezmeral",
      runDir: join(dir, "cluster"),
      binDir: await ensureK8sBinaries({ log: (l) => console.log(l) }),
      nodes: DEFAULT_NODES.filter((n) => !n.allocatable[GPU_RESOURCE]),
      commandPrefix: ezSite.prefix,
      log: (l) => console.log(l),
    });
    ezCleanups.push(() => k8s.stop());

    const cluster = await api("POST", "/v1/clusters", { name: "ezmeral", kind: "ezmeral", labels: { site: "onprem", gpu: "false" } });
    expect(cluster.status, JSON.stringify(cluster.body)).toBe(201);
    bootstrapToken = cluster.body.bootstrap.token;
    chart = await installAgentChart({ k8s, name: "ezmeral", helmInstall: cluster.body.bootstrap.helmInstall, profile: "ezmeral", mlflowUrl: env.mlflow.url, dir });

    // The step's project from git (the agent resolves it from the file system), and 8 records in
    // MLflow to partition: the user's side, from the host.
    stepProject = stepProjectInGit(dir);
    const mlflow = new MlflowClient({ trackingUri: env.mlflow.url });
    const { experimentId } = await mlflow.getOrCreateExperiment("ezmeral-inputs");
    const run = await mlflow.createRun({ experimentId, runName: "records" });
    for (let i = 0; i < 8; i++) await mlflow.uploadArtifact(run.info.runId, `records/r-${i}.txt`, `record ${i}`, "text/plain");
    await mlflow.terminateRun(run.info.runId, "FINISHED");
    inputRun = run.info.runId;
  }, 600_000);

  afterAll(async () => {
    await ezmeralAgent?.stop();
    for (const cleanup of ezCleanups.reverse()) await cleanup().catch((err) => console.error(`[hybrid] cleanup failed: ${(err as Error).message}`));
  }, 120_000);

  it("its cluster runs inside the site, whose direct connections to NATS, the control plane and MLflow fail: only the proxy and its own API server answer there", async () => {
    const netnsPids = new Set(ezSite.exec(["ip", "netns", "pids", ezSite.name]).stdout.split(/\s+/).filter(Boolean).map(Number));
    const components = k8s.pids();
    expect(Object.keys(components).sort()).toEqual(["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"]);
    for (const [name, pid] of Object.entries(components)) expect(netnsPids.has(pid), `${name} (${pid}) in ${ezSite.name}`).toBe(true);
    expect(await k8s.kubectl(["get", "nodes", "-o", "name"])).toBe("node/kwok-cpu-0\nnode/kwok-cpu-1\n");

    const ports = { nats: port(env.natsUrl), natsWss: natsEdge.port, controlPlane: port(env.control.url), controlPlaneHttps: controlEdge.port, mlflow: port(env.mlflow.url) };
    const inside = probe(ezSite, { ...ports, proxy: ezSite.proxyPort, apiServer: k8s.ports.apiserver }, `https://127.0.0.1:${controlEdge.port}/healthz`);
    expect(inside).toEqual({
      ...Object.fromEntries(Object.keys(ports).map((k) => [k, "ECONNREFUSED"])),
      proxy: "connected",
      apiServer: "connected",
      fetch: "ECONNREFUSED",
    });
  });

  it("its agent (Kubernetes executor) registers and runs prepare (4 partitions) → report through the proxy: the Jobs in the site's API server, the runs in MLflow, the CONNECTs in the proxy's log", async () => {
    // The proxy URL holds a password: the pods the agent makes take it from a Secret (the agent
    // refuses to start without one), given from stdin, never on a command line.
    const siteProxy = `http://${PROXY_USER}:${PROXY_PASSWORD}@127.0.0.1:${ezSite.proxyPort}`;
    await k8s.kubectl(["-n", AGENT_NAMESPACE, "apply", "-f", "-"], {
      input: JSON.stringify({ apiVersion: "v1", kind: "Secret", metadata: { name: "site-proxy" }, stringData: { HTTPS_PROXY: siteProxy, HTTP_PROXY: siteProxy } }),
    });
    ezmeralAgent = await startAgent({
      controlPlaneUrl: `https://127.0.0.1:${controlEdge.port}`,
      mlflowUrl: env.mlflow.url,
      stateDir: join(runDir, "ezmeral", "agent"),
      projectsRoot: join(runDir, "ezmeral"),
      bootstrapToken,
      prefix: ezSite.prefix,
      extraArgs: [...chart.agentArgs, "--nats-url", `wss://127.0.0.1:${natsEdge.port}`, "--pull-expires-seconds", "5", "--work-proxy-secret", "site-proxy"],
      env: siteAgentEnv(ezSite),
    });
    await waitFor("the ezmeral agent to register and report its cluster's resources", async () => (await api("GET", "/v1/clusters/ezmeral")).body.agent?.allocatable);

    const step = (id: string, extra: Record<string, unknown>) => ({
      id,
      cluster: "ezmeral",
      project: stepProject,
      image: "registry.example.test/steps/python:3.11",
      nodeSelector: { [POOL_LABEL]: "cpu" },
      env: { PARALLELS_TEST_DELAY: "1s" },
      ...extra,
    });
    const dag = {
      name: "ezmeral-prepare",
      nodes: [
        step("prepare", { partition: { by: "hash", input: "records", partitions: 4 }, parallelism: 4, inputs: { records: { run: inputRun } } }),
        step("report", { inputs: { prepared: { node: "prepare" } } }),
      ],
    };
    expect((await api("PUT", `/v1/dags/${dag.name}`, dag)).status).toBeLessThan(300);
    const submitted = await api("POST", "/v1/runs", { dag: dag.name });
    expect(submitted.status).toBe(201);
    const id = submitted.body.id as string;
    const run = await waitFor(
      "the ezmeral run to finish",
      async () => {
        const r = (await api("GET", `/v1/runs/${id}`)).body;
        return isTerminalRun(r.status) ? r : undefined;
      },
      150_000,
    );
    expect(run.status, JSON.stringify(run.nodes)).toBe("succeeded");
    const prepare = run.nodes.find((n: any) => n.nodeId === "prepare");
    expect(prepare.partitions).toMatchObject({ total: 4, done: 4, failed: 0 });

    // The Jobs, read from the site's API server (kubectl inside the namespace): one per node,
    // labelled with the run, prepare an Indexed Job of 4, every pod placed by the node selector.
    const jobs = (JSON.parse(await k8s.kubectl(["-n", AGENT_NAMESPACE, "get", "jobs", "-l", `parallels.io/run=${id}`, "-o", "json"])) as { items: any[] }).items;
    expect(jobs.map((j) => j.metadata.labels["parallels.io/node"]).sort()).toEqual(["prepare", "report"]);
    const prepareJob = jobs.find((j) => j.metadata.labels["parallels.io/node"] === "prepare");
    expect(prepareJob.spec).toMatchObject({ completionMode: "Indexed", completions: 4 });
    for (const job of jobs) expect(job.spec.template.spec.nodeSelector).toEqual({ [POOL_LABEL]: "cpu" });
    const pods = JSON.parse(await k8s.kubectl(["-n", AGENT_NAMESPACE, "get", "pods", "-l", `batch.kubernetes.io/job-name=${prepareJob.metadata.name}`, "-o", "json"])).items as any[];
    expect(pods.length).toBeGreaterThanOrEqual(4);
    for (const pod of pods) expect(["kwok-cpu-0", "kwok-cpu-1"]).toContain(pod.spec.nodeName);
    // Every container of the pods goes out through the site's proxy, its URL from the Secret: the password is in no spec.
    for (const c of [...prepareJob.spec.template.spec.initContainers, ...prepareJob.spec.template.spec.containers]) {
      expect(c.env.find((e: any) => e.name === "https_proxy")?.valueFrom, c.name).toEqual({ secretKeyRef: { name: "site-proxy", key: "HTTPS_PROXY", optional: true } });
    }
    expect(JSON.stringify(jobs)).not.toContain(PROXY_PASSWORD);

    // MLflow (read from the host): the parent the agent made, its two node runs, prepare's 4 partition runs.
    const mlflow = new MlflowClient({ trackingUri: env.mlflow.url });
    await waitFor("the parent run FINISHED", async () => (await mlflow.getRun(run.mlflowRunId)).info.status === "FINISHED", 30_000);
    const children = await childrenOf(mlflow, run.mlflowRunId);
    expect([...children.keys()].sort()).toEqual(["prepare", "report"]);
    expect([...children.values()].flat().map((r) => r.info.status)).toEqual(["FINISHED", "FINISHED"]);
    const prepareRun = children.get("prepare")![0]!;
    expect(await mlflow.childRuns([prepareRun.info.experimentId], prepareRun.info.runId)).toHaveLength(4);

    // The site's proxy saw exactly the agent's tunnels to the three services, and nothing
    // forwarded: no step program ran (KWOK), and the API server was reached inside the site.
    expect(new Set(ezProxy.connects())).toEqual(new Set([`127.0.0.1:${controlEdge.port}`, `127.0.0.1:${natsEdge.port}`, `127.0.0.1:${port(env.mlflow.url)}`]));
    expect(ezProxy.forwarded()).toEqual([]);

    const log = readFileSync(ezmeralAgent.logFile, "utf8");
    expect(log).not.toContain(PROXY_PASSWORD);
    const lines = log
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, any>);
    expect(lines.find((l) => l.msg === "connected to NATS")).toMatchObject({ transport: "websocket", servers: [`wss://127.0.0.1:${natsEdge.port}`] });
  }, 240_000);
});
