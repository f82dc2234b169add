/**
 * A real Kubernetes control plane for tests and benchmarks, on this machine: etcd,
 * kube-apiserver, kube-controller-manager and kube-scheduler (v1.34) and kwok, which fakes the
 * nodes and what their kubelets would report (stages.yaml). TLS and token auth, every listener on
 * 127.0.0.1, started in about 4–6 s once the binaries are built (binaries.ts).
 *
 *   const cluster = await startK8sCluster({ name: "a" });
 *   await cluster.kubectl(["create", "namespace", "x"]);
 *   await cluster.stop();
 *
 * A cluster's state lives in its run dir (PKI, kubeconfig, etcd data, logs, PIDs, how each
 * process was launched), so another process can take it over with `attachK8sCluster(info)` —
 * a vitest worker gets `info` from the global setup — and the next start in the same run dir
 * first stops whatever a crashed run left there.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { mkdir, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, saysPortInUse } from "../local/ports";
import { type ApiRequest, type ApiResponse, apiRequest } from "./api";
import { ensureK8sBinaries, missingBinaries } from "./binaries";
import {
  apiserverArgs,
  type Component,
  COMPONENTS,
  type ComponentTuning,
  controllerManagerArgs,
  etcdArgs,
  kubeconfigYaml,
  kwokArgs,
  kwokConfigurationYaml,
  type Ports,
  schedulerArgs,
} from "./components";
import { type ApiServerMetrics, parseApiServerMetrics } from "./metrics";
import { DEFAULT_NODES, type KwokNodeSpec, nodeManifest, nodeProblems } from "./nodes";
import { makePki } from "./pki";
import { killAllSync, launch, livePid, logTail, recordedNames, relaunch, stopProcesses } from "./processes";
import { CommandError, type RunOptions, runTool } from "./tools";

export { ensureK8sBinaries } from "./binaries";
export { DEFAULT_NODES, GPU_RESOURCE, GPU_TAINT, type KwokNodeSpec, type KwokTaint, POOL_LABEL } from "./nodes";
export { type ApiRequestCount, type ApiServerMetrics, WRITE_VERBS } from "./metrics";
export type { ApiRequest, ApiResponse } from "./api";
export { CommandError, type RunOptions } from "./tools";
export type { ComponentTuning, Ports } from "./components";

const HERE = dirname(fileURLToPath(import.meta.url));
/** The project's kwok stages (pod and node lifecycles, test knobs): see the file's header. */
export const STAGES_FILE = join(HERE, "stages.yaml");
/** What `kubectl logs` (and `GET …/pods/<name>/log`) returns for every container: kwok serves one file. */
export const FAKE_POD_LOG_LINES: readonly string[] = ["parallels k8s harness: kwok fakes this container, no process ran", "parallels k8s harness: second line of the fake log"];
/**
 * The knobs the kwok stages read from a pod (stages.yaml's header): each from the annotation or,
 * when the pod has none, from the env var (literal value) of its first container.
 */
export const TEST_KNOBS = {
  /** Go duration a Job pod runs before it ends (default 0). */
  delay: { annotation: "parallels.test/complete-delay", env: "PARALLELS_TEST_DELAY" },
  /** Comma-separated completion indexes whose pods fail, or `always`. */
  failIndex: { annotation: "parallels.test/fail-index", env: "PARALLELS_TEST_FAIL_INDEX" },
  /** Exit code of a failed pod's first container (default 1). */
  exitCode: { annotation: "parallels.test/exit-code", env: "PARALLELS_TEST_EXIT_CODE" },
  /** Its `reason`, e.g. `OOMKilled` (default `Error`). */
  failReason: { annotation: "parallels.test/fail-reason", env: "PARALLELS_TEST_FAIL_REASON" },
} as const;

/** Written into a run dir; a non-empty directory without it is never wiped. */
const MARKER = ".parallels-k8s-run";

/** The components' client budgets and workers ({@link ComponentTuning}) are left at their defaults unless given. */
export interface StartK8sClusterOptions extends ComponentTuning {
  /** Names the kubeconfig's cluster/context and the default run dir; default `parallels`. */
  name?: string;
  /** Where the cluster's state goes; wiped on start (only if empty or made by this harness). Default: a new temp dir, removed by `stop()`. */
  runDir?: string;
  /** Default: `ensureK8sBinaries()` (builds on first use). */
  binDir?: string;
  /** The fake nodes; default {@link DEFAULT_NODES} (two CPU nodes, one tainted GPU node with 4 GPUs). */
  nodes?: readonly KwokNodeSpec[];
  /**
   * Runs before every process of the cluster, kubectl and helm included — e.g.
   * `["ip", "netns", "exec", "hybrid-a"]` for a cluster inside a network namespace. It must exec
   * the command (so the recorded PID is the component's); the namespace needs `lo` up.
   */
  commandPrefix?: string[];
  /** Extra kwok config files (more stages, logs); loaded after {@link STAGES_FILE}. */
  extraKwokConfigs?: string[];
  /** Give up on readiness after this long; default 120 s. */
  readyTimeoutMs?: number;
  /** Progress and the start time; default stderr. */
  log?: (line: string) => void;
}

export interface K8sStartupTimes {
  /** From the start call to the apiserver's /readyz answering ok. */
  apiserverReadyMs: number;
  /** … to every node Ready with exactly its taints. */
  nodesReadyMs: number;
  /** … to everything ready (default ServiceAccount, scheduler /healthz). */
  totalMs: number;
}

/** A cluster's connection info: plain data (vitest's `provide`), turned back into a handle by {@link attachK8sCluster}. */
export interface K8sClusterInfo {
  name: string;
  /** `https://127.0.0.1:<port>` */
  apiUrl: string;
  /** The CA that signed the apiserver's certificate. */
  caFile: string;
  /** Admin (`system:masters`) bearer token. */
  adminToken: string;
  /** Admin kubeconfig: token auth, CA-verified, mode 0600. */
  kubeconfigPath: string;
  runDir: string;
  binDir: string;
  commandPrefix: string[];
  ports: Ports;
  nodes: KwokNodeSpec[];
  startup: K8sStartupTimes;
}

export interface K8sCluster extends K8sClusterInfo {
  /** Runs kubectl as admin (KUBECONFIG set, with the command prefix); resolves with stdout, rejects with {@link CommandError}. */
  kubectl(args: string[], opts?: RunOptions): Promise<string>;
  /** Runs helm as admin; its cache, config and data stay in the run dir. */
  helm(args: string[], opts?: RunOptions): Promise<string>;
  /** HTTPS to the apiserver from this process (host loopback only; see api.ts). */
  request(path: string, req?: ApiRequest): Promise<ApiResponse>;
  /** The apiserver's /metrics, scraped as admin, with `apiserver_request_total` parsed. */
  metrics(): Promise<ApiServerMetrics>;
  /**
   * Stops kube-apiserver (SIGTERM and, as it drains for up to 60 s, SIGKILL after 3 s; or SIGKILL at
   * once with `kill`), leaves it down for `downMs`, starts it
   * again with the same etcd, ports and flags and waits for /readyz. Resolves with how long the
   * API was unavailable. The other components reconnect on their own, on client-go's reflector
   * back-off (0.8 s doubling to 30 s, with as much jitter again, reset after 2 quiet minutes):
   * a few seconds after one restart, but restarts in quick succession keep the controllers,
   * the scheduler and kwok away for up to a minute each — one restart per test is the fast case.
   */
  restartApiServer(opts?: { kill?: boolean; downMs?: number }): Promise<number>;
  /**
   * Stops every process of the cluster as `stop()` does, but keeps the run dir (etcd's data, the
   * PKI, how each process was launched): a cluster gone dark, its API server and "kubelets"
   * (kwok) with it, that {@link K8sCluster.restart} brings back as it was.
   */
  halt(): Promise<void>;
  /**
   * Starts a halted cluster's components again exactly as they were launched (same etcd data,
   * ports, flags, credentials), the API server first, and waits for /readyz and every node Ready.
   * Objects stored before the halt (Jobs, pods) are found again; kwok starts each running pod's
   * `complete-delay` anew. Resolves with how long it took; refuses while a component still runs.
   */
  restart(): Promise<number>;
  /** PIDs of the running processes, by component. */
  pids(): Partial<Record<Component, number>> & Record<string, number>;
  /** The plain data of this cluster. */
  info(): K8sClusterInfo;
  /**
   * Stops exactly the recorded processes (SIGTERM, then SIGKILL after 10 s, 3 s for the apiserver; etcd last) and removes
   * the run dir if it was a temp dir this handle made. Idempotent.
   */
  stop(): Promise<void>;
}

class StartError extends Error {
  constructor(
    message: string,
    readonly portInUse = false,
  ) {
    super(message);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts a cluster and waits until it is ready. Port clashes with other listeners are retried on new ports. */
export async function startK8sCluster(opts: StartK8sClusterOptions = {}): Promise<K8sCluster> {
  const t0 = Date.now();
  const name = opts.name ?? "parallels";
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const binDir = opts.binDir ?? (await ensureK8sBinaries({ log }));
  const missing = missingBinaries(binDir);
  if (missing.length) throw new Error(`${binDir} lacks ${missing.join(", ")}: run scripts/k8s/build.sh`);
  const tempRunDir = opts.runDir === undefined;
  const runDir = tempRunDir ? mkdtempSync(join(tmpdir(), `parallels-k8s-${name}-`)) : resolve(opts.runDir!);

  for (let attempt = 1; ; attempt++) {
    await prepareRunDir(runDir);
    try {
      const info = await startOnce(runDir, binDir, name, opts, t0, log);
      writeFileSync(join(runDir, "cluster.json"), JSON.stringify(info, null, 2), { mode: 0o600 });
      return handle(info, { ownsRunDir: tempRunDir, exitHook: true });
    } catch (e) {
      await stopAll(runDir).catch(() => {});
      if (e instanceof StartError && e.portInUse && attempt < 3) {
        log(`[k8s ${name}] a port was taken meanwhile; starting again on other ports`);
        continue;
      }
      throw new Error(`${(e as Error).message}\n(run dir kept for inspection: ${runDir})`, { cause: e });
    }
  }
}

/** A handle on a cluster another process started (same run dir): every method works from here too. */
export function attachK8sCluster(info: K8sClusterInfo): K8sCluster {
  return handle(info, { ownsRunDir: false, exitHook: false });
}

/** Stops whatever a run dir's pid files name (a crashed run's leftovers); no-op if none. */
export async function stopK8sRunDir(runDir: string): Promise<void> {
  await stopAll(resolve(runDir));
}

/** Stops leftovers and empties the run dir — but only a dir this harness made (or an empty one). */
async function prepareRunDir(runDir: string): Promise<void> {
  await mkdir(runDir, { recursive: true, mode: 0o700 });
  const entries = await readdir(runDir);
  if (entries.length && !entries.includes(MARKER)) {
    throw new Error(`refusing to wipe ${runDir}: not empty and not a harness run dir (no ${MARKER})`);
  }
  await stopAll(runDir);
  await Promise.all(entries.filter((e) => e !== MARKER).map((e) => rm(join(runDir, e), { recursive: true, force: true })));
  writeFileSync(join(runDir, MARKER), "a Kubernetes harness run dir: wiped on every start\n");
}

async function startOnce(runDir: string, binDir: string, name: string, opts: StartK8sClusterOptions, t0: number, log: (line: string) => void): Promise<K8sClusterInfo> {
  const prefix = opts.commandPrefix ?? [];
  const nodes = [...(opts.nodes ?? DEFAULT_NODES)];
  const readyTimeoutMs = opts.readyTimeoutMs ?? 120_000;
  const pki = await makePki(join(runDir, "pki"));
  const ports: Ports = {
    etcdClient: await freePort(),
    etcdPeer: await freePort(),
    apiserver: await freePort(),
    scheduler: await freePort(),
    kwok: await freePort(),
  };
  const apiUrl = `https://127.0.0.1:${ports.apiserver}`;
  const kubeconfigPath = join(runDir, "kubeconfig");
  writeFileSync(kubeconfigPath, kubeconfigYaml({ name, server: apiUrl, caFile: pki.caCert, token: pki.adminToken }), { mode: 0o600 });
  const kwokLogs = await writeKwokLogs(runDir);
  await mkdir(join(runDir, "etcd"), { mode: 0o700 });

  const info: K8sClusterInfo = {
    name,
    apiUrl,
    caFile: pki.caCert,
    adminToken: pki.adminToken,
    kubeconfigPath,
    runDir,
    binDir,
    commandPrefix: prefix,
    ports,
    nodes,
    startup: { apiserverReadyMs: 0, nodesReadyMs: 0, totalMs: 0 },
  };
  const tools = clients(info);
  const start = (component: Component, args: string[]) => launch(runDir, { name: component, prefix, binary: join(binDir, component), args });
  const wait = (what: string, check: () => Promise<true | string>, alive: readonly Component[]) => waitUntil(runDir, what, check, alive, t0 + readyTimeoutMs);

  await start("etcd", etcdArgs(runDir, ports));
  await start("kube-apiserver", apiserverArgs(pki, ports));
  await wait("kube-apiserver /readyz", () => readyz(tools.kubectl), ["etcd", "kube-apiserver"]);
  info.startup.apiserverReadyMs = Date.now() - t0;

  await start("kube-controller-manager", controllerManagerArgs(pki, kubeconfigPath, opts));
  await start("kube-scheduler", schedulerArgs(pki, kubeconfigPath, ports, opts));
  const kwokTuning = opts.kwokPodWorkers === undefined ? [] : [writeRunFile(runDir, "kwok-configuration.yaml", kwokConfigurationYaml(opts.kwokPodWorkers))];
  await start("kwok", kwokArgs(pki, kubeconfigPath, ports, [STAGES_FILE, kwokLogs, ...kwokTuning, ...(opts.extraKwokConfigs ?? [])]));
  await tools.kubectl(["create", "-f", "-"], { input: JSON.stringify({ apiVersion: "v1", kind: "List", items: nodes.map(nodeManifest) }) });
  await wait("nodes Ready with exactly their taints", () => nodesReady(tools.kubectl, nodes), COMPONENTS);
  info.startup.nodesReadyMs = Date.now() - t0;

  await wait(
    "ServiceAccount default/default",
    async () => {
      await tools.kubectl(["-n", "default", "get", "serviceaccount", "default", "-o", "name"]);
      return true;
    },
    COMPONENTS,
  );
  await wait(
    "kube-scheduler /healthz",
    async () => {
      const out = await tools.kubectl(["--server", `https://127.0.0.1:${ports.scheduler}`, "get", "--raw", "/healthz"]);
      return out.trim() === "ok" || out.trim();
    },
    COMPONENTS,
  );
  info.startup.totalMs = Date.now() - t0;
  const s = info.startup;
  log(
    `[k8s ${name}] ready at ${apiUrl} in ${(s.totalMs / 1000).toFixed(1)} s (apiserver ${(s.apiserverReadyMs / 1000).toFixed(1)} s, nodes ${(s.nodesReadyMs / 1000).toFixed(1)} s); run dir ${runDir}`,
  );
  return info;
}

function writeRunFile(runDir: string, name: string, text: string): string {
  const file = join(runDir, name);
  writeFileSync(file, text);
  return file;
}

/** kwok serves every container's log from one file; it must hold CRI-format lines. */
async function writeKwokLogs(runDir: string): Promise<string> {
  await mkdir(join(runDir, "logs"), { recursive: true });
  const podLog = join(runDir, "logs", "fake-pod.log");
  const ts = new Date().toISOString().replace("Z", "000000Z"); // RFC 3339 with nanoseconds
  writeFileSync(podLog, FAKE_POD_LOG_LINES.map((l) => `${ts} stdout F ${l}\n`).join(""));
  const config = join(runDir, "kwok-logs.yaml");
  writeFileSync(
    config,
    [
      "apiVersion: kwok.x-k8s.io/v1alpha1",
      "kind: ClusterLogs",
      "metadata:",
      "  name: parallels-fake-logs",
      "spec:",
      "  logs:",
      `  - logsFile: ${JSON.stringify(podLog)}`,
      "    follow: false",
      "",
    ].join("\n"),
  );
  return config;
}

async function readyz(kubectl: (args: string[]) => Promise<string>): Promise<true | string> {
  const out = await kubectl(["get", "--raw", "/readyz"]);
  return out.trim() === "ok" || out.trim();
}

/** True once every node is Ready with exactly its taints, else what is still wrong. */
async function nodesReady(kubectl: (args: string[]) => Promise<string>, nodes: readonly KwokNodeSpec[]): Promise<true | string> {
  const list = JSON.parse(await kubectl(["get", "nodes", "-o", "json"])) as { items: Array<{ metadata?: { name?: string } }> };
  const problems = nodes.flatMap((n) =>
    nodeProblems(
      list.items.find((i) => i.metadata?.name === n.name),
      n,
    ),
  );
  return problems.length ? problems.join("; ") : true;
}

/**
 * Polls `check` until it returns true; meanwhile every process in `alive` must live (a component
 * that exited fails the start at once, with its log, and says whether a port was taken).
 */
async function waitUntil(runDir: string, what: string, check: () => Promise<true | string>, alive: readonly string[], deadline: number): Promise<void> {
  let last = "not checked yet";
  for (;;) {
    for (const name of alive) {
      if (livePid(runDir, name) === undefined) {
        const tail = logTail(runDir, name);
        throw new StartError(`${name} exited while waiting for ${what}:\n${tail}`, saysPortInUse(tail));
      }
    }
    try {
      const r = await check();
      if (r === true) return;
      last = r;
    } catch (e) {
      last = e instanceof CommandError ? e.stderr.trim() || e.message : (e as Error).message;
    }
    if (Date.now() > deadline) {
      const tails = alive.map((n) => `--- ${n}:\n${logTail(runDir, n, 8)}`).join("\n");
      throw new StartError(`timed out waiting for ${what}: ${last}\n${tails}`);
    }
    await sleep(200);
  }
}

function clients(info: K8sClusterInfo) {
  const env = { KUBECONFIG: info.kubeconfigPath, KUBECACHEDIR: join(info.runDir, "kube-cache") };
  const helmDir = join(info.runDir, "helm");
  const helmEnv = {
    ...env,
    HELM_CACHE_HOME: join(helmDir, "cache"),
    HELM_CONFIG_HOME: join(helmDir, "config"),
    HELM_DATA_HOME: join(helmDir, "data"),
  };
  return {
    kubectl: (args: string[], o: RunOptions = {}) => runTool(info.commandPrefix, join(info.binDir, "kubectl"), args, { ...o, env: { ...env, ...o.env } }),
    helm: (args: string[], o: RunOptions = {}) => runTool(info.commandPrefix, join(info.binDir, "helm"), args, { ...o, env: { ...helmEnv, ...o.env } }),
  };
}

/**
 * kube-apiserver drains for up to its request timeout (60 s) while clients keep connections
 * open; the state is throw-away, so it gets this long before SIGKILL.
 */
const APISERVER_GRACE_MS = 3_000;

/**
 * Stop order: processes a test added to the run dir; the apiserver's clients (so it has no
 * connections left to drain); the apiserver; etcd last, so the apiserver's shutdown still reaches it.
 */
async function stopAll(runDir: string): Promise<void> {
  const recorded = recordedNames(runDir);
  const extra = recorded.filter((n) => !(COMPONENTS as readonly string[]).includes(n));
  if (extra.length) await stopProcesses(runDir, extra);
  await stopProcesses(runDir, ["kwok", "kube-scheduler", "kube-controller-manager"]);
  await stopProcesses(runDir, ["kube-apiserver"], { graceMs: APISERVER_GRACE_MS });
  await stopProcesses(runDir, ["etcd"]);
}

function handle(info: K8sClusterInfo, o: { ownsRunDir: boolean; exitHook: boolean }): K8sCluster {
  const { runDir } = info;
  const tools = clients(info);
  // A Node process that ends without stop() (a crashed suite) takes its cluster along.
  const onExit = () => killAllSync(runDir);
  if (o.exitHook) process.on("exit", onExit);
  let stopped = false;
  return {
    ...info,
    kubectl: tools.kubectl,
    helm: tools.helm,
    request(path, req) {
      if (info.commandPrefix.length) {
        throw new Error(`cluster ${info.name} runs behind a command prefix (${info.commandPrefix.join(" ")}): use kubectl`);
      }
      return apiRequest(info, path, req);
    },
    async metrics() {
      return parseApiServerMetrics(await tools.kubectl(["get", "--raw", "/metrics"]));
    },
    async restartApiServer(r = {}) {
      const t = Date.now();
      await stopProcesses(runDir, ["kube-apiserver"], { kill: r.kill, graceMs: APISERVER_GRACE_MS });
      if (r.downMs) await sleep(r.downMs);
      await relaunch(runDir, "kube-apiserver");
      await waitUntil(runDir, "kube-apiserver /readyz after a restart", () => readyz(tools.kubectl), ["etcd", "kube-apiserver"], Date.now() + 120_000);
      return Date.now() - t;
    },
    async halt() {
      await stopAll(runDir);
    },
    async restart() {
      const t = Date.now();
      const running = COMPONENTS.filter((c) => livePid(runDir, c) !== undefined);
      if (running.length) throw new Error(`cluster ${info.name}: ${running.join(", ")} still running; halt() it before restart()`);
      const deadline = t + 120_000;
      await relaunch(runDir, "etcd");
      await relaunch(runDir, "kube-apiserver");
      await waitUntil(runDir, "kube-apiserver /readyz after a halt", () => readyz(tools.kubectl), ["etcd", "kube-apiserver"], deadline);
      for (const c of ["kube-controller-manager", "kube-scheduler", "kwok"] as const) await relaunch(runDir, c);
      await waitUntil(runDir, "nodes Ready with exactly their taints after a halt", () => nodesReady(tools.kubectl, info.nodes), COMPONENTS, deadline);
      return Date.now() - t;
    },
    pids() {
      const out: Record<string, number> = {};
      for (const name of recordedNames(runDir)) {
        const pid = livePid(runDir, name);
        if (pid !== undefined) out[name] = pid;
      }
      return out;
    },
    info: () => structuredClone(info),
    async stop() {
      if (stopped) return;
      await stopAll(runDir);
      stopped = true;
      if (o.exitHook) process.off("exit", onExit);
      if (o.ownsRunDir) await rm(runDir, { recursive: true, force: true });
    },
  };
}

/** Reads a run dir's `cluster.json` (written once the cluster was ready), e.g. to attach to it from a script. */
export async function readK8sClusterInfo(runDir: string): Promise<K8sClusterInfo> {
  const file = join(resolve(runDir), "cluster.json");
  await stat(file);
  return JSON.parse(readFileSync(file, "utf8")) as K8sClusterInfo;
}
