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
 */
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSite, type Site } from "../../scripts/hybrid/site";
import { startTinyproxy, type Tinyproxy } from "../../scripts/hybrid/tinyproxy";
import { startTlsEdge, type TlsEdge } from "../../scripts/hybrid/tls-edge";
import { makePki, type Pki } from "../../scripts/k8s/pki";
import { startAgent, type AgentProcess } from "../../scripts/local/agent";
import { ROOT } from "../../scripts/local/control-plane";
import { startEmbedded, type Embedded } from "../../scripts/local/embedded";
import { MlflowClient } from "../../proto/mlflow";
import { isTerminalRun } from "../../proto/status";
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

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${agent ? `; agent log:\n${readFileSync(agent.logFile, "utf8").split("\n").slice(-30).join("\n")}` : ""}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * From where `prefix` puts it (inside the site, or the host with `[]`): a TCP connect to each port
 * of 127.0.0.1 ("connected" or the error code) and a fetch of `url` ("answered <status>" or the
 * error's cause code). No proxy variables: a direct attempt.
 */
function probe(prefix: string[], ports: Record<string, number>, url: string): Record<string, string> {
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
  const r = prefix.length ? site.exec([NODE, "-e", script], { env: probeEnv }) : spawnSync(NODE, ["-e", script], { encoding: "utf8", env: probeEnv, timeout: 30_000 });
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
    const host = probe([], ports, controlHealth);
    expect(host).toEqual({ ...Object.fromEntries(Object.keys(ports).map((k) => [k, "connected"])), fetch: expect.stringMatching(/^answered \d{3}$/) });
    const inside = probe(site.prefix, { ...ports, proxy: site.proxyPort }, controlHealth);
    expect(inside).toEqual({ ...Object.fromEntries(Object.keys(ports).map((k) => [k, "ECONNREFUSED"])), proxy: "connected", fetch: "ECONNREFUSED" });
  });

  it("the agent inside registers, pulls over wss and runs a DAG through the proxy (CONNECTs to the control plane, NATS's WebSocket and MLflow in tinyproxy's log)", async () => {
    const proxyUrl = `http://${PROXY_USER}:${PROXY_PASSWORD}@127.0.0.1:${site.proxyPort}`;
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
      // Both cases: Python reads the lower-case ones first (an empty one would unset the other).
      // The steps inherit them; MLflow's Python client would otherwise ask the proxy for
      // config.mlflow-telemetry.io:443 (this test caught it: the CONNECTs below are checked exactly).
      env: {
        HTTPS_PROXY: proxyUrl,
        https_proxy: proxyUrl,
        HTTP_PROXY: proxyUrl,
        http_proxy: proxyUrl,
        NO_PROXY: "",
        no_proxy: "",
        NODE_EXTRA_CA_CERTS: pki.caCert,
        MLFLOW_DISABLE_TELEMETRY: "true",
      },
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
