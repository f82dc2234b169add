/**
 * The SDK's one scenario (sdk-scenario.ts: apply the example DAG, submit a run, wait, read the
 * result) in its three places, against one real control plane under `wrangler dev` with NATS,
 * `mlflow server` and a local agent (scripts/local/embedded.ts):
 *
 * 1. in Node, imported as it is;
 * 2. inside workerd, as a Worker bundled with esbuild and served by its own `wrangler dev` — the
 *    serverless case;
 * 3. in Debian's Chromium (headless, playwright-core), on a page served from 127.0.0.1 that loads
 *    the SDK bundled with esbuild; the control plane is another origin, allowed by `CORS_ORIGINS`.
 *
 * Each place's run is checked beyond what the scenario itself says: the control plane answers it
 * as succeeded, and MLflow holds the counts the example DAG computes.
 */
import { spawn } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MlflowClient } from "../../proto/mlflow";
import { startAgent, type AgentProcess } from "../../scripts/local/agent";
import { freePort, OFFLINE_ENV, ROOT } from "../../scripts/local/control-plane";
import { startEmbedded, type Embedded } from "../../scripts/local/embedded";
import { type Browser, launchChromium } from "../browser/chromium";
import type { ScenarioInput, ScenarioResult } from "./sdk-scenario";
import { sdkScenario } from "./sdk-scenario";

const TOKEN = "sdk-test-admin-token";
const DAG_YAML = readFileSync(join(ROOT, "examples/wordcount/dag.yaml"), "utf8");
const EXPECTED_TOP = JSON.parse(readFileSync(join(ROOT, "examples/wordcount/expected-top.json"), "utf8")) as [string, number][];

let state: string;
let env: Embedded;
let agent: AgentProcess;
let page: Server;
let origin: string;
let input: ScenarioInput;
/** Runs submitted so far, in any place: each place counts the DAG's runs through the list. */
let runsSoFar = 0;

/** esbuild's bundle of the SDK scenario for the page, and of the Worker. */
const bundles = { page: "", worker: "" };

async function bundle(opts: { stdin?: string; entry?: string; conditions: string[] }): Promise<string> {
  const out = await build({
    ...(opts.stdin ? { stdin: { contents: opts.stdin, resolveDir: ROOT, loader: "ts", sourcefile: "page-entry.ts" } } : { entryPoints: [opts.entry!] }),
    bundle: true,
    format: "esm",
    platform: "browser",
    conditions: opts.conditions,
    target: "es2022",
    write: false,
    logLevel: "warning",
  });
  return out.outputFiles[0]!.text;
}

/** A page on 127.0.0.1 with the bundled scenario as `globalThis.sdkScenario`. */
function servePage(): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url === "/sdk.js") {
      res.writeHead(200, { "content-type": "text/javascript" }).end(bundles.page);
    } else if (req.url === "/") {
      res.writeHead(200, { "content-type": "text/html" }).end('<!doctype html><title>SDK</title><script type="module" src="/sdk.js"></script>');
    } else res.writeHead(404).end();
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

async function api(path: string): Promise<any> {
  const res = await fetch(env.control.url + path, { headers: { authorization: `Bearer ${TOKEN}` } });
  return res.json();
}

/** What every place must have done: a real run of the example DAG, succeeded, its counts in MLflow. */
async function expectScenarioDone(result: ScenarioResult) {
  runsSoFar++;
  expect(result.dag).toEqual({ name: "wordcount", version: 1 });
  expect(result.status).toBe("succeeded");
  expect(result.params).toEqual({ top: "3" });
  expect(result.progress.at(-1)).toBe("succeeded");
  expect(result.nodes.map((n) => [n.nodeId, n.status, n.done, n.total])).toEqual([
    ["count", "succeeded", 4, 4],
    ["merge", "succeeded", 1, 1],
    ["split", "succeeded", 1, 1],
  ]);
  expect(result.runsOfDag).toBe(runsSoFar);
  expect(result.missing).toEqual({ isParallelsError: true, name: "ParallelsError", code: "not_found", status: 404, message: 'run "no-such-run" not found' });

  // Not only what the SDK said: the control plane's own answer, and the DAG's result in MLflow.
  const stored = await api(`/v1/runs/${result.runId}`);
  expect(stored).toMatchObject({ id: result.runId, status: "succeeded", mlflowRunId: result.mlflowRunId });
  const merge = result.nodes.find((n) => n.nodeId === "merge")!;
  const counts = JSON.parse(await new MlflowClient({ trackingUri: env.mlflow.url }).downloadArtifactText(merge.mlflowRunId!, "counts.json")) as Record<string, number>;
  expect(Object.entries(counts).slice(0, EXPECTED_TOP.length)).toEqual(EXPECTED_TOP);
}

/**
 * The Worker under `wrangler dev`, in a folder of its own (no wrangler.toml: name and compatibility
 * date on the command line), on 127.0.0.1, telemetry off. Ready once it answers.
 */
async function startWorker(script: string): Promise<{ url: string; stop(): Promise<void> }> {
  const dir = join(state, "worker");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "sdk-worker.js"), script);
  const port = await freePort();
  const args = ["dev", "sdk-worker.js", "--name", "sdk-scenario", "--compatibility-date", "2026-11-01", "--ip", "127.0.0.1", "--port", String(port)];
  args.push("--inspector-port", String(await freePort()), "--persist-to", join(dir, "state"), "--show-interactive-dev-session=false");
  const child = spawn(join(ROOT, "node_modules/.bin/wrangler"), args, { cwd: dir, env: { ...process.env, ...OFFLINE_ENV }, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let output = "";
  child.stdout!.on("data", (c: Buffer) => (output += c));
  child.stderr!.on("data", (c: Buffer) => (output += c));
  const url = `http://127.0.0.1:${port}/`;
  const stop = async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    process.kill(-child.pid!, "SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  };
  for (const deadline = Date.now() + 60_000; ; ) {
    if (child.exitCode !== null) throw new Error(`wrangler dev of the Worker exited:\n${output}`);
    if (
      await fetch(url, { signal: AbortSignal.timeout(2000) }).then(
        (r) => r.ok,
        () => false,
      )
    )
      return { url, stop };
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`the Worker did not answer within 60 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

beforeAll(async () => {
  state = mkdtempSync(join(tmpdir(), "parallels-sdk-"));
  const projects = join(state, "projects");
  cpSync(join(ROOT, "examples/wordcount"), projects, { recursive: true });
  [bundles.page, bundles.worker] = await Promise.all([
    bundle({ stdin: 'import { sdkScenario } from "./test/node/sdk-scenario.ts"; globalThis.sdkScenario = sdkScenario;', conditions: ["browser"] }),
    bundle({ entry: join(ROOT, "test/workers/sdk-worker.ts"), conditions: ["workerd", "worker", "browser"] }),
  ]);
  page = await servePage();
  origin = `http://127.0.0.1:${(page.address() as { port: number }).port}`;
  env = await startEmbedded({ stateDir: state, adminToken: TOKEN, ports: "free", vars: { CORS_ORIGINS: origin } });
  const cluster = await fetch(`${env.control.url}/v1/clusters`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "local", kind: "local" }),
  }).then((r) => r.json() as Promise<any>);
  agent = await startAgent({
    controlPlaneUrl: env.control.url,
    mlflowUrl: env.mlflow.url,
    stateDir: join(state, "agent"),
    projectsRoot: projects,
    pythonBinDir: env.mlflow.binDir,
    bootstrapToken: cluster.bootstrap.token,
  });
  for (let i = 0; (await api("/v1/clusters/local")).status !== "online"; i++) {
    if (i > 240) throw new Error(`the agent did not come online (log: ${agent.logFile})`);
    await new Promise((r) => setTimeout(r, 250));
  }
  input = { baseUrl: env.control.url, token: TOKEN, dagYaml: DAG_YAML, params: { top: "3" } };
}, 600_000);

afterAll(async () => {
  await agent?.stop();
  await env?.stop();
  await new Promise((r) => (page ? page.close(r) : r(undefined)));
  if (state) rmSync(state, { recursive: true, force: true });
});

describe("the SDK's scenario: apply a DAG, submit a run, wait, read the result", { timeout: 240_000 }, () => {
  it("in Node", async () => {
    const result = await sdkScenario(input);
    expect(result.created).toBe(true);
    await expectScenarioDone(result);
  });

  it("inside workerd, as a Worker calling the control plane (its own wrangler dev)", async () => {
    const worker = await startWorker(bundles.worker);
    try {
      const res = await fetch(worker.url, { method: "POST", body: JSON.stringify(input) });
      const body = (await res.json()) as ScenarioResult & { error?: string };
      expect(body.error).toBeUndefined();
      expect(res.status).toBe(200);
      await expectScenarioDone(body);
    } finally {
      await worker.stop();
    }
  });

  it("in Chromium, on a page of another origin allowed by CORS_ORIGINS", async () => {
    let browser: Browser | undefined;
    try {
      browser = await launchChromium();
      const tab = await browser.context.newPage();
      const errors: string[] = [];
      tab.on("pageerror", (e) => errors.push(e.message));
      await tab.goto(`${origin}/`);
      await tab.waitForFunction(() => typeof (globalThis as any).sdkScenario === "function");
      const result = await tab.evaluate((i) => (globalThis as any).sdkScenario(i) as Promise<ScenarioResult>, input);
      expect(errors).toEqual([]);
      expect(await tab.evaluate(() => location.origin)).not.toBe(new URL(env.control.url).origin);
      await expectScenarioDone(result);
    } finally {
      await browser?.close();
    }
  });
});
