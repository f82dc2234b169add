/**
 * The agent: one process per cluster (ARCHITECTURE §3–§5). `main()` reads the configuration and
 * turns SIGTERM/SIGINT into an abort; {@link run} registers (or loads stored credentials), starts
 * the executor, reconciles what it was running, then runs the loops — heartbeats, the NATS pull
 * loop, event flushing, /healthz + /metrics — in one `Promise.all` until the signal aborts. On
 * abort it stops pulling, lets handlers finish, flushes events and returns.
 */
import { chmodSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { isAttemptOutcome } from "../../proto/status";
import { AGENT_VERSION, ConfigError, HELP, loadConfig, type AgentConfig } from "./config";
import { createControlPlaneClient } from "./control";
import { EventReporter } from "./events";
import { createLocalExecutor } from "./executor/local";
import type { CacheLookupFn, Executor } from "./executor/types";
import { serveHealth } from "./health";
import { localMachine, runHeartbeats } from "./heartbeat";
import { createLogger, errInfo, type Logger } from "./log";
import { createMetrics, type Metrics } from "./metrics";
import { createPuller } from "./nats";
import { describeProxy, installProxy } from "./proxy";
import { RunEnds } from "./run-ends";
import { type CredentialStore, ensureCredentials, FileCredentialStore, type StoredCredentials } from "./register";
import { createWorkHandler } from "./work";

export interface ExecutorContext {
  config: AgentConfig;
  credentials: StoredCredentials;
  logger: Logger;
  metrics?: Metrics;
  /** Asks the control plane for a cache hit (`POST /v1/agent/cache`), with the agent's current credential. */
  cacheLookup?: CacheLookupFn;
}

export interface RunDeps {
  logger?: Logger;
  /** The executor to use (tests); by default the one `config.executor` names. */
  createExecutor?: (ctx: ExecutorContext) => Executor | Promise<Executor>;
  fetch?: typeof fetch;
  /** Called with the bound port of the health server (useful with port 0). */
  onHealthPort?: (port: number) => void;
}

/** The one place that knows the executors. */
async function createExecutor({ config, credentials, logger, metrics, cacheLookup }: ExecutorContext): Promise<Executor> {
  switch (config.executor) {
    case "kubernetes": {
      // Loaded only here: the local agent never pays for it.
      const k8s = await import("./executor/kubernetes/setup");
      const access = k8s.kubeAccess(config, (verb) => metrics?.kubernetesRequests.inc({ verb }));
      return k8s.kubernetesExecutorFor(config, access, credentials.clusterId, logger, (endpoint) => metrics?.mlflowRequests.inc({ endpoint }), cacheLookup);
    }
    case "local":
      return createLocalExecutor({
        stateDir: join(config.stateDir, "executor"),
        trackingUri: config.mlflowTrackingUri!, // required for "local" by loadConfig
        ...(config.projectsRoot ? { projectsRoot: config.projectsRoot } : {}),
        ...(config.pythonBinDir ? { pythonBinDir: config.pythonBinDir } : {}),
        ...(config.maxProcesses ? { maxProcesses: config.maxProcesses } : {}),
        stepsMlflowCredentials: config.stepsMlflowCredentials,
        logUploadMs: config.logsEverySeconds * 1000,
        onMlflowRequest: (endpoint) => metrics?.mlflowRequests.inc({ endpoint }),
        maxPartitionRuns: config.maxPartitionRuns,
        ...(cacheLookup ? { cacheLookup } : {}),
        ...(config.containers ? { containers: await (await import("./images/setup")).localContainersFor(config) } : {}),
        logger,
      });
  }
}

/** Where the agent keeps its credentials: a Secret the chart made (Kubernetes), else a 0600 file in the state dir. */
async function credentialStoreFor(config: AgentConfig): Promise<CredentialStore> {
  if (config.executor === "kubernetes" && config.credentialsSecret) {
    const k8s = await import("./executor/kubernetes/setup");
    return k8s.secretCredentialStore(k8s.kubeAccess(config), config.credentialsSecret);
  }
  return new FileCredentialStore(config.credentialsPath);
}

/** HTTPS, or a control plane on this machine: its answers cannot be rewritten on the way. */
function trustedForRedirects(controlPlaneUrl: string): boolean {
  const url = new URL(controlPlaneUrl);
  return url.protocol === "https:" || ["127.0.0.1", "localhost", "[::1]"].includes(url.hostname);
}

const sameServers = (a: string[], b: string[]) => a.length === b.length && [...a].sort().join(",") === [...b].sort().join(",");

/** How long stopping waits for `executor.close()` (its attempts are reconciled by the next start anyway). */
export const CLOSE_GRACE_MS = 20_000;

/** `executor.close()`, but never longer than `ms`: a stuck close must not keep the agent from exiting. */
export async function closeWithin(executor: Executor, ms: number, log: Logger): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<"late">((r) => (timer = setTimeout(() => r("late"), ms)));
  try {
    const outcome = await Promise.race([executor.close().then(() => "closed" as const), late]);
    if (outcome === "late") log.warn({ waitedMs: ms }, "the executor did not close in time; stopping anyway");
  } catch (err) {
    log.error({ err: errInfo(err) }, "closing the executor failed");
  } finally {
    clearTimeout(timer);
  }
}

export async function run(config: AgentConfig, signal: AbortSignal, deps: RunDeps = {}): Promise<void> {
  const logger = deps.logger ?? createLogger({ level: config.logLevel });
  // Before the first request: every fetch and WebSocket of the process goes through the proxy.
  if (config.proxy) {
    await installProxy(config.proxy);
    logger.info({ proxy: describeProxy(config.proxy), extraCaCerts: process.env.NODE_EXTRA_CA_CERTS ?? null }, "requests go through the proxy");
  }
  if (config.ignoredNoProxy.length) logger.warn({ ignored: config.ignoredNoProxy }, "NO_PROXY entries that are CIDR ranges have no effect on the agent (list hosts, .domain suffixes or IPs)");
  // Credentials, the journal and the attempt records live here: only this user may enter.
  mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
  chmodSync(config.stateDir, 0o700);
  const metrics = createMetrics();
  const client = createControlPlaneClient({ baseUrl: config.controlPlaneUrl, fetch: deps.fetch, userAgent: `parallels-agent/${AGENT_VERSION}` });
  const store = await credentialStoreFor(config);
  let credentials = await ensureCredentials({ store, client, controlPlaneUrl: config.controlPlaneUrl, bootstrapToken: config.bootstrapToken, agentVersion: AGENT_VERSION, logger, signal });
  const log = logger.child({ clusterId: credentials.clusterId });

  let wake = () => {};
  // Runs the control plane said ended, kept until the executor has closed their MLflow parents.
  const runEnds = new RunEnds(config.stateDir, log.child({ component: "run-ends" }));
  const events = EventReporter.open({
    stateDir: config.stateDir,
    client,
    credential: credentials.credential,
    logger: log.child({ component: "events" }),
    metrics,
    onReport: (_, e) => isAttemptOutcome(e.type) && wake(),
    // The control plane alone knows when a DAG run is over; the executor closes what it keeps per run.
    onEndedRuns: (runs) => {
      for (const r of runs) log.info({ runId: r.runId, status: r.status }, "the control plane says the DAG run ended");
      runEnds.add(runs);
    },
  });
  // `credentials` may be replaced (a re-registration): the lookup reads the current one.
  const cacheLookup: CacheLookupFn = async (ask) => (await client.cache(credentials.credential, ask)).hit;
  const ex = await (deps.createExecutor ?? createExecutor)({ config, credentials, logger: log.child({ component: "executor" }), metrics, cacheLookup });

  // Level-triggered restart: re-attach reporters to what the executor knows, and re-report it.
  // This is the one place a restart re-reports (the executor's reconcile reports nothing itself).
  const recovered = await ex.reconcile((ref) => events.reporterFor(ref));
  for (const a of recovered) {
    events.report(a, {
      type: a.state,
      message: a.message ?? `re-reported after an agent restart (${a.state})`,
      ...(a.mlflowRunId ? { mlflowRunId: a.mlflowRunId } : {}),
      ...(a.counts ? { counts: a.counts } : {}),
      ...(a.state === "failed" ? a.failure : {}),
      ...(a.state === "succeeded" && a.cachedFrom ? { cachedFrom: a.cachedFrom } : {}),
    });
  }
  if (recovered.length > 0) log.info({ attempts: recovered.length }, "reconciled attempts from before the restart");

  const handler = createWorkHandler({ executor: ex, reporterFor: (ref) => events.reporterFor(ref), maxConcurrent: config.maxConcurrentAttempts, logger: log.child({ component: "work" }) });
  wake = handler.wake;
  const puller = createPuller({ credentials, servers: config.natsUrl, handler, logger: log.child({ component: "nats" }), metrics, pullExpiresMs: config.pullExpiresSeconds * 1000 });
  Object.assign(metrics.sources, {
    queueDepth: () => events.depth,
    runningAttempts: () => ex.running(),
    natsConnected: puller.natsConnected,
    lastPullAgeSeconds: () => {
      const at = puller.lastPullAt();
      return at === null ? Infinity : (Date.now() - at) / 1000;
    },
  });

  // NATS moved (every heartbeat answer says where it is now): connect there, and remember it. A
  // `--nats-url` given by the operator wins; and an answer that came over plain HTTP from another
  // machine is not followed (whoever can rewrite it could send this agent work).
  const trusted = trustedForRedirects(config.controlPlaneUrl);
  let warnedUntrusted = false;
  const followNats = async ({ natsServers }: { natsServers: string[] }) => {
    if (config.natsUrl?.length || natsServers.length === 0) return;
    if (sameServers(natsServers, credentials.nats.servers)) return puller.setServers(natsServers); // idempotent
    if (!trusted) {
      if (!warnedUntrusted) log.warn({ to: natsServers }, "the control plane names other NATS servers, but over plain HTTP to another machine: not followed; pass --nats-url");
      warnedUntrusted = true;
      return;
    }
    log.info({ from: credentials.nats.servers, to: natsServers }, "the control plane gives new NATS servers; following");
    puller.setServers(natsServers);
    const next = { ...credentials, nats: { ...credentials.nats, servers: natsServers } };
    try {
      await store.save(next);
      credentials = next;
    } catch (err) {
      log.warn({ err: errInfo(err) }, "could not store the new NATS servers; trying again with the next heartbeat");
    }
  };

  // One failing loop stops them all (and the process exits non-zero).
  const stop = new AbortController();
  const all = AbortSignal.any([signal, stop.signal]);
  let fatal: unknown = null;
  const loop = (name: string, p: Promise<unknown>) =>
    p.catch((err) => {
      log.fatal({ loop: name, err: errInfo(err) }, "a loop failed; stopping the agent");
      fatal ??= err;
      stop.abort();
    });
  log.info({ version: AGENT_VERSION, executor: config.executor, maxConcurrentAttempts: config.maxConcurrentAttempts }, "agent running");
  await Promise.all([
    loop(
      "heartbeat",
      runHeartbeats(
        {
          client,
          credential: credentials.credential,
          intervalSeconds: config.heartbeatSeconds ?? credentials.heartbeatSeconds,
          agentVersion: AGENT_VERSION,
          running: () => ex.running(),
          describe: ex.describe ? () => ex.describe!() : localMachine,
          logger: log.child({ component: "heartbeat" }),
          metrics,
          onAnswer: followNats,
        },
        all,
      ),
    ),
    loop(
      "pull",
      puller.run(all).finally(() => closeWithin(ex, CLOSE_GRACE_MS, log)),
    ),
    loop("events", events.run(all)),
    loop(
      "run-ends",
      runEnds.run((r) => ex.runEnded(r.runId, r.status), all),
    ),
    loop(
      "health",
      serveHealth(
        { host: config.healthHost, port: config.healthPort, state: puller, metrics, unhealthyAfterMs: config.unhealthyAfterSeconds * 1000, logger: log.child({ component: "health" }) },
        all,
        deps.onHealthPort,
      ),
    ),
  ]);
  const left = await events.flush(5000);
  events.close();
  log.info({ eventsLeftInJournal: left }, left > 0 ? "stopped; unsent events are kept for the next start" : "stopped cleanly");
  if (fatal) throw fatal;
}

export async function main(argv = process.argv.slice(2)): Promise<never> {
  // Inside a work pod the same image runs the pod's own programs (init container, sidecar).
  if (argv[0] === "pod") process.exit(await (await import("./pod/main")).podMain(argv.slice(1)));
  let config: AgentConfig | "help";
  try {
    config = loadConfig(argv, process.env);
  } catch (err) {
    process.stderr.write(`parallels-agent: ${err instanceof ConfigError ? err.message : String(err)}\n`);
    process.exit(2);
  }
  if (config === "help") {
    process.stdout.write(`${HELP}\n`);
    process.exit(0);
  }
  const logger = createLogger({ level: config.logLevel });
  const ac = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    if (ac.signal.aborted) process.exit(130); // a second signal: stop now
    logger.info({ signal: sig }, "stopping: no more pulling; finishing what is in hand");
    ac.abort();
  };
  process.on("SIGTERM", onSignal).on("SIGINT", onSignal);
  process.on("unhandledRejection", (err) => logger.error({ err: errInfo(err) }, "unhandled rejection (a bug); the agent keeps running"));
  try {
    await run(config, ac.signal, { logger });
    process.exit(0);
  } catch (err) {
    logger.fatal({ err: errInfo(err) }, "the agent stopped with an error");
    process.exit(1);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) void main();
