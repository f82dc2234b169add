// The agent's core end to end: the REAL nats-server (operator mode, test/support/nats-server.ts),
// the REAL control plane under `wrangler dev` (scripts/local/control-plane.ts) with NATS
// configured, and the agent core in this process. The executor is `RecordingExecutor`, which
// stands in for the local executor: it records what the core asks and lets the test report.
import { spawn } from "node:child_process";
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { jwtAuthenticator, type NatsConnection } from "@nats-io/nats-core";
import { createUser } from "@nats-io/nkeys";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig, type AgentConfig } from "../../agent/src/config";
import type { AttemptRef, AttemptReporter, Executor, RecoveredAttempt } from "../../agent/src/executor/types";
import { createLogger } from "../../agent/src/log";
import { run } from "../../agent/src/main";
import type { WorkCancel, WorkStart } from "../../proto/messages";
import type { TerminalRunStatus } from "../../proto/status";
import { ROOT, startControlPlane, type ControlPlane } from "../../scripts/local/control-plane";
import { freePort, startTestNatsServer, type TestNatsServer } from "../support/nats-server";

const ADMIN = "agent-core-admin-token-0123456789";
const logger = createLogger({ level: process.env.AGENT_TEST_LOG ?? "silent" });

/** Stands in for the local executor: records starts/cancels; the test reports through the recorded reporters. */
class RecordingExecutor implements Executor {
  readonly starts: { work: WorkStart; reporter: AttemptReporter }[] = [];
  readonly cancels: WorkCancel[] = [];
  readonly active = new Set<string>();
  recovered: RecoveredAttempt[] = [];
  reattached: AttemptRef[] = [];
  closed = false;
  /** How long `start` takes (a slow "durably started"). */
  startDelayMs = 0;
  /** When set, `start` rejects retryably with this message (e.g. MLflow down), counting the tries. */
  failStartsWith: string | null = null;
  failedStarts = 0;
  async start(work: WorkStart, reporter: AttemptReporter) {
    if (this.startDelayMs) await new Promise((r) => setTimeout(r, this.startDelayMs));
    if (this.failStartsWith !== null) {
      this.failedStarts++;
      throw Object.assign(new Error(this.failStartsWith), { retryable: true });
    }
    const key = `${work.nodeRunId}#${work.attempt}`;
    const known = [...this.starts.map((s) => s.work), ...this.recovered];
    if (known.some((w) => `${w.nodeRunId}#${w.attempt}` === key)) return; // idempotent: known attempts are not started again
    this.starts.push({ work, reporter });
    this.active.add(key);
  }
  async cancel(work: WorkCancel, reporter: AttemptReporter) {
    this.cancels.push(work);
    this.active.delete(`${work.nodeRunId}#${work.attempt}`);
    reporter.report({ type: "cancelled" });
  }
  /** The DAG runs the control plane said ended (through the events answer). */
  readonly ended: { runId: string; status: string }[] = [];
  async runEnded(runId: string, status: TerminalRunStatus) {
    this.ended.push({ runId, status });
  }
  async reconcile(reporterFor: (ref: AttemptRef) => AttemptReporter) {
    for (const r of this.recovered) reporterFor(r);
    this.reattached = [...this.recovered];
    return this.recovered;
  }
  running() {
    return this.active.size;
  }
  async close() {
    this.closed = true;
  }
  /** Plays a step: running, then succeeded. */
  finish(nodeId: string) {
    const s = this.starts.find((x) => x.work.nodeId === nodeId)!;
    s.reporter.report({ type: "running", counts: { total: 1, done: 0, failed: 0, running: 1 } });
    s.reporter.report({ type: "succeeded", counts: { total: 1, done: 1, failed: 0, running: 0 } });
    this.active.delete(`${s.work.nodeRunId}#${s.work.attempt}`);
  }
}

async function until<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe("agent core end to end (real nats-server, real control plane under wrangler dev)", () => {
  let nats: TestNatsServer;
  let cp: ControlPlane;
  let cpDir: string;
  let agentDir: string;
  let control: NatsConnection;
  let jsm: JetStreamManager;
  let bootstrapToken: string;
  let clusterId: string;

  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${cp.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as any };
  };

  /** Starts the agent core in-process; returns how to stop it and what it exposes. */
  function startAgent(argv: string[], executor: RecordingExecutor) {
    const config = loadConfig(
      ["--control-plane-url", cp.url, "--state-dir", agentDir, "--health-port", "0", "--pull-expires-seconds", "2", "--mlflow-tracking-uri", "http://127.0.0.1:9", ...argv],
      {},
    ) as AgentConfig;
    const ac = new AbortController();
    let healthPort = 0;
    const done = run(config, ac.signal, { logger, createExecutor: () => executor, onHealthPort: (p) => (healthPort = p) });
    done.catch(() => undefined);
    const health = async (path = "/healthz") => {
      if (!healthPort) return null;
      const res = await fetch(`http://127.0.0.1:${healthPort}${path}`);
      return { status: res.status, text: await res.text() };
    };
    const stop = () => {
      ac.abort();
      return done;
    };
    return { done, stop, health };
  }

  beforeAll(async () => {
    [cpDir, agentDir] = await Promise.all([mkdtemp(join(tmpdir(), "agent-core-cp-")), mkdtemp(join(tmpdir(), "agent-core-agent-"))]);
    nats = await startTestNatsServer();
    cp = await startControlPlane({ stateDir: cpDir, vars: { PARALLELS_ADMIN_TOKEN: ADMIN, NATS_WS_URL: nats.wsUrl, NATS_URL: nats.url, ...nats.secrets } });
    control = await connect({ servers: nats.url, authenticator: jwtAuthenticator(nats.secrets.NATS_CONTROL_USER_JWT, new TextEncoder().encode(nats.secrets.NATS_CONTROL_USER_SEED)) });
    jsm = await jetstreamManager(control);
    const created = await api("POST", "/v1/clusters", { name: "local", kind: "local" });
    expect(created.status).toBe(201);
    bootstrapToken = created.body.bootstrap.token;
    clusterId = created.body.cluster.id;
    const dag = await api("POST", "/v1/dags", {
      name: "two-steps",
      nodes: [
        { id: "first", project: { uri: "examples/noop" } },
        { id: "second", project: { uri: "examples/noop" }, after: ["first"] },
      ],
    });
    expect(dag.status).toBe(201);
  }, 90_000);

  afterAll(async () => {
    await control?.close().catch(() => undefined);
    await cp?.stop();
    await nats?.stop();
    await Promise.all([cpDir, agentDir].filter(Boolean).map((d) => rm(d, { recursive: true, force: true })));
  });

  it("registers, pulls the root's start, reports, gets the dependant, and the run succeeds; garbage is terminated", async () => {
    const executor = new RecordingExecutor();
    const agent = startAgent(["--bootstrap-token", bootstrapToken], executor);
    await until("the agent to be healthy", async () => (await agent.health())?.status === 200);

    const credsPath = join(agentDir, "credentials.json");
    const creds = JSON.parse(await readFile(credsPath, "utf8"));
    expect(creds).toMatchObject({ clusterId, clusterName: "local", nats: { servers: [nats.url], inboxPrefix: `_INBOX_${clusterId}`, consumer: `agent-${clusterId}`, stream: "WORK" } });
    expect(creds.nats.seed).toMatch(/^SU/);
    expect((await stat(credsPath)).mode & 0o777).toBe(0o600);
    expect((await api("GET", "/v1/clusters/local")).body).toMatchObject({ status: "online", agent: { agentVersion: expect.any(String), runningJobs: 0 } });

    const submitted = await api("POST", "/v1/runs", { dag: "two-steps" });
    expect(submitted.status).toBe(201);
    const runId: string = submitted.body.id;
    await until("the start of `first`", () => executor.starts.some((s) => s.work.nodeId === "first"));
    expect(executor.starts[0]!.work).toMatchObject({ type: "start", runId, nodeId: "first", nodeRunId: `${runId}-first`, attempt: 1 });
    await until("the start message acked", async () => (await jsm.consumers.info("WORK", `agent-${clusterId}`)).num_ack_pending === 0);
    executor.finish("first");
    await until("the start of `second`", () => executor.starts.some((s) => s.work.nodeId === "second"));
    expect(executor.starts.map((s) => s.work.nodeId)).toEqual(["first", "second"]);
    executor.finish("second");
    const finished = await until("the run to succeed", async () => {
      const r = await api("GET", `/v1/runs/${runId}`);
      return r.body.status === "succeeded" && r.body;
    });
    expect(finished.nodes.map((n: any) => [n.nodeId, n.status, n.attempt])).toEqual([
      ["first", "succeeded", 1],
      ["second", "succeeded", 1],
    ]);
    // The answer to the batch that ended the run says so; the core hands it to the executor.
    await until("the executor told the run ended", () => executor.ended.some((e) => e.runId === runId));
    expect(executor.ended.filter((e) => e.runId === runId)).toEqual([{ runId, status: "succeeded" }]);

    // Garbage on the cluster's work subject, published as the control plane's user.
    const before = await jsm.consumers.info("WORK", `agent-${clusterId}`);
    await control.publish(`work.${clusterId}.start`, "this is not JSON");
    await control.flush();
    await until("the garbage to be terminated", async () => /parallels_agent_messages_terminated_total\{reason="unparseable"\} 1/.test((await agent.health("/metrics"))!.text));
    await new Promise((r) => setTimeout(r, 500));
    const after = await jsm.consumers.info("WORK", `agent-${clusterId}`);
    expect(after.delivered.stream_seq).toBe(before.delivered.stream_seq + 1);
    expect(after.num_ack_pending + after.num_pending + after.num_redelivered).toBe(0);
    expect((await jsm.streams.info("WORK")).state.messages).toBe(0); // work-queue: terminated = gone

    const metrics = (await agent.health("/metrics"))!.text;
    expect(metrics).toMatch(/parallels_agent_messages_acked_total\{kind="start"\} 2/);
    expect(metrics).toMatch(/parallels_agent_event_queue_depth 0/);
    expect(metrics).toMatch(/parallels_agent_nats_connected 1/);

    await agent.stop();
    expect(executor.closed).toBe(true);
    expect(await readFile(join(agentDir, "events.jsonl"), "utf8")).toBe(""); // everything was sent
  }, 40_000);

  it("after a restart it reuses the stored credentials, re-reports what it recovered, and the bootstrap token is spent", async () => {
    const credsBefore = await readFile(join(agentDir, "credentials.json"), "utf8");
    const executor = new RecordingExecutor();
    const submitted = await api("POST", "/v1/runs", { dag: "two-steps" });
    const runId: string = submitted.body.id;
    // As if the agent died after `first` started: the executor finds it after the restart.
    executor.recovered = [{ runId, nodeRunId: `${runId}-first`, nodeId: "first", attempt: 1, state: "succeeded" }];
    await chmod(agentDir, 0o755); // as if made by hand: the agent closes it again
    const agent = startAgent([], executor); // no bootstrap token
    await until("the agent to be healthy", async () => (await agent.health())?.status === 200);
    expect(await readFile(join(agentDir, "credentials.json"), "utf8")).toBe(credsBefore);
    expect((await stat(agentDir)).mode & 0o777).toBe(0o700);
    expect((await stat(join(agentDir, "events.jsonl"))).mode & 0o777).toBe(0o600);
    expect(executor.reattached).toHaveLength(1);
    // The start of `first` was queued while the agent was down: a redelivered start the executor
    // ignores (idempotent); the re-reported `succeeded` dispatches `second`.
    await until("the start of `second`", () => executor.starts.some((s) => s.work.nodeId === "second" && s.work.runId === runId));
    executor.finish("second");
    await until("the run to succeed", async () => (await api("GET", `/v1/runs/${runId}`)).body.status === "succeeded");
    await agent.stop();

    const reuse = await fetch(`${cp.url}/v1/agent/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ bootstrapToken, natsPublicKey: createUser().getPublicKey(), agentVersion: "0.1.0" }),
    });
    expect(reuse.status).toBe(401);
    expect(((await reuse.json()) as any).error.message).toMatch(/unknown or already used bootstrap token/);
  }, 30_000);

  it("follows NATS to where the heartbeat answer says it is when the stored URL went stale, and stores it", async () => {
    const credsPath = join(agentDir, "credentials.json");
    const original = await readFile(credsPath, "utf8");
    const dead = await freePort(); // nothing listens there
    await writeFile(credsPath, JSON.stringify({ ...JSON.parse(original), nats: { ...JSON.parse(original).nats, servers: [`nats://127.0.0.1:${dead}`] } }), { mode: 0o600 });
    const executor = new RecordingExecutor();
    const agent = startAgent([], executor);
    try {
      await until("the agent to be healthy", async () => (await agent.health())?.status === 200);
      expect(JSON.parse(await readFile(credsPath, "utf8")).nats.servers).toEqual([nats.url]);
      const runId: string = (await api("POST", "/v1/runs", { dag: "two-steps" })).body.id;
      await until("the start of `first`", () => executor.starts.some((s) => s.work.runId === runId));
      executor.finish("first");
      await until("the start of `second`", () => executor.starts.some((s) => s.work.runId === runId && s.work.nodeId === "second"));
      executor.finish("second");
      await until("the run to succeed", async () => (await api("GET", `/v1/runs/${runId}`)).body.status === "succeeded");
    } finally {
      await agent.stop();
    }
    expect(JSON.parse(await readFile(credsPath, "utf8"))).toEqual(JSON.parse(original));
  }, 30_000);

  it("nats-server restarts: /healthz fails while it is down, the agent reconnects and pulls again", async () => {
    const executor = new RecordingExecutor();
    const agent = startAgent([], executor);
    await until("the agent to be healthy", async () => (await agent.health())?.status === 200);
    await control.close();
    // Probed while the server restarts: the agent notices the dropped connection at once and
    // waits at least 250 ms before reconnecting, and the server takes longer than that to boot.
    const restarting = nats.restart({ kill: true });
    const down = await until(
      "/healthz to fail",
      async () => {
        const h = await agent.health();
        return h?.status === 503 && h;
      },
      10_000,
    );
    await restarting;
    control = await connect({ servers: nats.url, authenticator: jwtAuthenticator(nats.secrets.NATS_CONTROL_USER_JWT, new TextEncoder().encode(nats.secrets.NATS_CONTROL_USER_SEED)) });
    jsm = await jetstreamManager(control);
    expect(JSON.parse(down.text).problems).toContain("not connected to NATS");
    await until("/healthz to pass again", async () => (await agent.health())?.status === 200, 15_000);
    const runId: string = (await api("POST", "/v1/runs", { dag: "two-steps" })).body.id;
    await until("the start of `first` after the restart", () => executor.starts.some((s) => s.work.runId === runId), 20_000);
    executor.finish("first");
    await until("the start of `second`", () => executor.starts.some((s) => s.work.runId === runId && s.work.nodeId === "second"));
    executor.finish("second");
    await until("the run to succeed", async () => (await api("GET", `/v1/runs/${runId}`)).body.status === "succeeded");
    await agent.stop();
  }, 45_000);

  it("a start slower than ack_wait is kept by in-progress acks: delivered once, acked only once started", async () => {
    // Shorten the consumer's ack_wait (as the control plane's user) so the test can outlast it.
    const name = `agent-${clusterId}`;
    const current = (await jsm.consumers.info("WORK", name)).config;
    await jsm.consumers.update("WORK", name, { ack_wait: 1_500_000_000, backoff: [1_500_000_000, 3_000_000_000], max_deliver: current.max_deliver });
    try {
      await slowStart(name);
    } finally {
      // Put the consumer back as the control plane made it, for the tests that follow.
      await jsm.consumers.update("WORK", name, { ack_wait: current.ack_wait, backoff: current.backoff, max_deliver: current.max_deliver });
    }
    expect((await jsm.consumers.info("WORK", name)).config).toMatchObject({ ack_wait: current.ack_wait, backoff: current.backoff, max_deliver: current.max_deliver });
  }, 30_000);

  async function slowStart(name: string) {
    const executor = new RecordingExecutor();
    executor.startDelayMs = 4_000;
    const agent = startAgent([], executor);
    await until("the agent to be healthy", async () => (await agent.health())?.status === 200);
    const runId: string = (await api("POST", "/v1/runs", { dag: "two-steps" })).body.id;
    await until("the message in hand", async () => (await jsm.consumers.info("WORK", name)).num_ack_pending === 1);
    await new Promise((r) => setTimeout(r, 3_000)); // twice the ack_wait, start still running
    const during = await jsm.consumers.info("WORK", name);
    expect(executor.starts).toHaveLength(0);
    expect([during.num_ack_pending, during.num_redelivered]).toEqual([1, 0]);
    await until("the start to finish", () => executor.starts.length === 1);
    await until("the ack", async () => (await jsm.consumers.info("WORK", name)).num_ack_pending === 0);
    expect((await jsm.consumers.info("WORK", name)).num_redelivered).toBe(0);
    const metrics = (await agent.health("/metrics"))!.text;
    expect(metrics).toMatch(/parallels_agent_messages_received_total\{kind="start"\} 1\n/);
    executor.startDelayMs = 0;
    executor.finish("first");
    await until("the start of `second`", () => executor.starts.some((s) => s.work.runId === runId && s.work.nodeId === "second"));
    executor.finish("second");
    await until("the run to succeed", async () => (await api("GET", `/v1/runs/${runId}`)).body.status === "succeeded");
    await agent.stop();
  }

  it("a start that keeps failing retryably is reported failed on its last delivery (max_deliver) and terminated", async () => {
    const name = `agent-${clusterId}`;
    const current = (await jsm.consumers.info("WORK", name)).config;
    // Two deliveries (the agent naks with a 5 s delay between them).
    await jsm.consumers.update("WORK", name, { ack_wait: current.ack_wait, backoff: [current.ack_wait ?? 30_000_000_000], max_deliver: 2 });
    const executor = new RecordingExecutor();
    executor.failStartsWith = "MLflow is down";
    const agent = startAgent([], executor);
    try {
      await until("the agent to be healthy", async () => (await agent.health())?.status === 200);
      const runId: string = (await api("POST", "/v1/runs", { dag: "two-steps" })).body.id;
      const run = await until(
        "the run to fail",
        async () => {
          const r = await api("GET", `/v1/runs/${runId}`);
          return r.body.status === "failed" && r.body;
        },
        30_000,
      );
      const first = run.nodes.find((n: any) => n.nodeId === "first");
      expect(first).toMatchObject({ status: "failed", attempt: 1 });
      expect(first.message).toMatch(/could not start the attempt after 2 deliveries \(the consumer's max_deliver\): MLflow is down/);
      expect(executor.failedStarts).toBe(2);
      await until("the message gone", async () => {
        const info = await jsm.consumers.info("WORK", name);
        return info.num_ack_pending + info.num_pending === 0;
      });
      expect((await agent.health("/metrics"))!.text).toMatch(/parallels_agent_messages_terminated_total\{reason="max_deliver"\} 1/);
    } finally {
      await agent.stop();
      await jsm.consumers.update("WORK", name, { ack_wait: current.ack_wait, backoff: current.backoff, max_deliver: current.max_deliver });
    }
  }, 45_000);

  it("a start message that fails validation but names its attempt is reported failed with the problem, then terminated", async () => {
    const executor = new RecordingExecutor();
    const agent = startAgent([], executor);
    await until("the agent to be healthy", async () => (await agent.health())?.status === 200);
    const runId: string = (await api("POST", "/v1/runs", { dag: "two-steps" })).body.id;
    await until("the start of `first`", () => executor.starts.some((s) => s.work.runId === runId));
    // A broken start for the same attempt (no `node`), as a buggy or newer publisher could send.
    await control.publish(`work.${clusterId}.start`, JSON.stringify({ type: "start", runId, nodeRunId: `${runId}-first`, nodeId: "first", attempt: 1 }));
    await control.flush();
    const run = await until("the run to fail", async () => {
      const r = await api("GET", `/v1/runs/${runId}`);
      return r.body.status === "failed" && r.body;
    });
    expect(run.nodes.find((n: any) => n.nodeId === "first").message).toMatch(/^the agent could not read the start message: not a work message: .*node: Invalid input/);
    await agent.stop();
  }, 30_000);

  it("as a process: SIGTERM stops pulling, flushes and exits 0", async () => {
    const child = spawn(join(ROOT, "agent/bin/parallels-agent"), ["--health-port", "0", "--pull-expires-seconds", "2"], {
      env: { ...process.env, PARALLELS_CONTROL_PLANE_URL: cp.url, PARALLELS_STATE_DIR: agentDir, MLFLOW_TRACKING_URI: "http://127.0.0.1:9", PARALLELS_LOG_LEVEL: "info" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout!.on("data", (c) => (out += c));
    child.stderr!.on("data", (c) => (out += c));
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    await until("the agent to pull", () => out.includes('"msg":"pulling work"'), 20_000).catch((e) => {
      throw new Error(`${(e as Error).message}\n${out}`);
    });
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(out).toContain('"msg":"stopped cleanly"');
    for (const secret of [JSON.parse(await readFile(join(agentDir, "credentials.json"), "utf8")).credential, bootstrapToken]) expect(out).not.toContain(secret);
  }, 30_000);
});
