// Durability of the local executor: an agent process killed with SIGKILL while its steps run;
// a new executor over the same state dir re-attaches to the processes (they were detached in
// their own process groups) and reports how they end.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLocalExecutor, type LocalExecutor } from "../../agent/src/executor/local/index";
import { makeDir, recorder, type Recorder, workFor } from "../../agent/src/executor/testing";
import type { AttemptReport } from "../../agent/src/executor/types";
import type { WorkStart } from "../../proto/messages";
import { MlflowClient } from "../../proto/mlflow/index";
import { MLFLOW_START_TIMEOUT_MS, startMlflowServer, type MlflowTestServer } from "../support/mlflow-server";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
let server: MlflowTestServer;
let mlflow: MlflowClient;
const cleanup: string[] = [];
const executors: LocalExecutor[] = [];
const agents: ChildProcess[] = [];

beforeAll(async () => {
  server = await startMlflowServer();
  mlflow = new MlflowClient({ trackingUri: server.url, retry: { maxRetries: 2, baseDelayMs: 50 } });
}, MLFLOW_START_TIMEOUT_MS);

afterAll(async () => {
  for (const a of agents) a.kill("SIGKILL");
  await Promise.all(executors.map((e) => e.close()));
  await server?.stop();
  for (const d of cleanup) rmSync(d, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  cleanup.push(d);
  return d;
}

const AGENT = `
import { appendFileSync, readFileSync } from "node:fs";
import { createLocalExecutor } from ${JSON.stringify(join(repoRoot, "agent/src/executor/local/index.ts"))};
const cfg = JSON.parse(readFileSync(process.argv[2], "utf8"));
const ex = createLocalExecutor({ stateDir: cfg.stateDir, trackingUri: cfg.trackingUri, pythonBinDir: cfg.binDir, projectsRoot: cfg.projectsRoot, pollMs: 50 });
await ex.start(cfg.work, { report: (e) => appendFileSync(cfg.events, JSON.stringify(e) + "\\n") });
console.log("STARTED");
setInterval(() => {}, 1000);
`;

/** Run an executor in its own Node process (as the agent would), start `work`, resolve once started. */
async function agentProcess(stateDir: string, work: WorkStart): Promise<{ child: ChildProcess; events: () => AttemptReport[] }> {
  const dir = tempDir("parallels-agent-");
  const script = join(dir, "agent.mts");
  const events = join(dir, "events.jsonl");
  writeFileSync(script, AGENT);
  writeFileSync(join(dir, "cfg.json"), JSON.stringify({ stateDir, trackingUri: server.url, binDir: server.binDir, projectsRoot: tmpdir(), work, events }));
  // `node --import tsx`, not the tsx CLI: the CLI runs the script in a second process, which a
  // SIGKILL of the first would leave running.
  const child = spawn(process.execPath, ["--import", pathToFileURL(join(repoRoot, "node_modules/tsx/dist/loader.mjs")).href, script, join(dir, "cfg.json")], {
    cwd: repoRoot,
    stdio: ["ignore", "pipe", "pipe"],
  });
  agents.push(child);
  let out = "";
  await new Promise<void>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`agent did not start: ${out}`)), 60_000);
    const on = (b: Buffer) => {
      out += b.toString();
      if (out.includes("STARTED")) {
        clearTimeout(timer);
        ok();
      }
    };
    child.stdout!.on("data", on);
    child.stderr!.on("data", on);
    child.once("exit", (code) => fail(new Error(`agent exited (${code}): ${out}`)));
  });
  const read = () =>
    existsSync(events)
      ? readFileSync(events, "utf8")
          .split("\n")
          .filter(Boolean)
          .map((l) => JSON.parse(l) as AttemptReport)
      : [];
  return { child, events: read };
}

async function sigkill(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGKILL");
  await exited;
}

const waitUntil = async (what: string, f: () => boolean, ms = 20_000) => {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

/** Each partition records its start in TRACE, waits for the file GO, then writes an output. */
function gatedProject(): string {
  const d = makeDir({
    MLproject: 'entry_points:\n  main:\n    command: "python gated.py"\n',
    "gated.py": [
      "import os, pathlib, time",
      "i = os.environ.get('PARALLELS_PARTITION_INDEX', 'solo')",
      "with open(os.path.join(os.environ['TRACE'], 'starts.txt'), 'a') as f: f.write(f'{i} {os.getpid()}\\n')",
      "while not os.path.exists(os.environ['GO']): time.sleep(0.05)",
      "pathlib.Path(os.environ['PARALLELS_OUTPUTS_DIR'], f'out-{i}.txt').write_text(i)",
      "print(f'partition {i} done')",
    ].join("\n"),
  });
  cleanup.push(d);
  return d;
}

const starts = (trace: string) =>
  existsSync(join(trace, "starts.txt"))
    ? readFileSync(join(trace, "starts.txt"), "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => l.split(" "))
    : [];

describe("restart after SIGKILL of the agent", () => {
  it("a new executor re-attaches to the running partitions, starts the pending one, and reports the end", async () => {
    const stateDir = tempDir("parallels-state-");
    const trace = tempDir("parallels-trace-");
    const data = makeDir({ "a.txt": "a", "b.txt": "b", "c.txt": "c" });
    cleanup.push(data);
    const go = join(trace, "go");
    const work = workFor({
      id: "gated",
      project: { uri: gatedProject() },
      inputs: { d: { uri: data } },
      partition: { by: "object", input: "d" },
      parallelism: 2,
      env: { TRACE: trace, GO: go },
    });
    const agent = await agentProcess(stateDir, work);
    await waitUntil("two partitions running", () => starts(trace).length === 2);
    const first = agent.events();
    expect(first[0]!.type).toBe("running");
    const nodeRunId = first[0]!.mlflowRunId!;
    // While that agent lives, no second one may drive its state dir.
    expect(() => createLocalExecutor({ stateDir, trackingUri: server.url })).toThrow(/in use by process \d+/);
    await sigkill(agent.child);
    const pids = starts(trace).map(([, pid]) => Number(pid));
    for (const pid of pids) expect(() => process.kill(pid, 0)).not.toThrow(); // the steps survived

    const ex = createLocalExecutor({ stateDir, trackingUri: server.url, mlflow, pythonBinDir: server.binDir, projectsRoot: tmpdir(), pollMs: 50 });
    executors.push(ex);
    const reporters = new Map<string, Recorder>();
    const recovered = await ex.reconcile((ref) => {
      const r = recorder();
      reporters.set(`${ref.nodeRunId}#${ref.attempt}`, r);
      return r;
    });
    expect(recovered).toEqual([{ runId: work.runId, nodeRunId: work.nodeRunId, nodeId: "gated", attempt: 1, state: "running" }]);
    expect(ex.running()).toBe(1);
    const rec = reporters.get(`${work.nodeRunId}#1`)!;
    // The redelivered start of the same attempt does nothing new.
    await ex.start(work, rec);
    await new Promise((r) => setTimeout(r, 300));
    expect(starts(trace)).toHaveLength(2);

    writeFileSync(go, "");
    const done = await rec.waitFor("succeeded");
    expect(done.counts).toEqual({ total: 3, done: 3, failed: 0, running: 0 });
    expect(
      starts(trace)
        .map(([i]) => i)
        .sort(),
    ).toEqual(["0", "1", "2"]); // each partition ran once
    const node = await mlflow.getRun(nodeRunId);
    expect(node.info.status).toBe("FINISHED");
    const nested = await mlflow.childRuns([node.info.experimentId], nodeRunId);
    expect(nested.map((r) => r.info.status)).toEqual(["FINISHED", "FINISHED", "FINISHED"]);
    const files = (await mlflow.listArtifacts(nodeRunId)).map((f) => f.path).sort();
    expect(files).toEqual(["out-0.txt", "out-1.txt", "out-2.txt", "parallels"]);
    for (const r of nested) {
      const i = r.data.tags["parallels.partition.index"];
      expect(await mlflow.downloadArtifactText(r.info.runId, "parallels/logs/stdout.log")).toBe(`partition ${i} done\n`);
    }
  });

  it("a step that ended while no agent was running is reported by reconcile", async () => {
    const stateDir = tempDir("parallels-state-");
    const trace = tempDir("parallels-trace-");
    const go = join(trace, "go");
    const work = workFor({ id: "solo", project: { uri: gatedProject() }, env: { TRACE: trace, GO: go } });
    const agent = await agentProcess(stateDir, work);
    await waitUntil("the step running", () => starts(trace).length === 1);
    await sigkill(agent.child);
    writeFileSync(go, "");
    const attemptDir = join(stateDir, "work");
    await waitUntil("the exit file", () => readdirSync(attemptDir).some((d) => existsSync(join(attemptDir, d, "partitions", "0", "exit"))));

    const ex = createLocalExecutor({ stateDir, trackingUri: server.url, mlflow, pythonBinDir: server.binDir, projectsRoot: tmpdir(), pollMs: 50 });
    executors.push(ex);
    const rec = recorder();
    const recovered = await ex.reconcile(() => rec);
    expect(recovered.map((r) => r.state)).toEqual(["running"]);
    const done = await rec.waitFor("succeeded");
    expect(done.counts).toEqual({ total: 1, done: 1, failed: 0, running: 0 });
    const run = await mlflow.getRun(agent.events()[0]!.mlflowRunId!);
    expect(run.info.status).toBe("FINISHED");
    expect(await mlflow.downloadArtifactText(run.info.runId, "out-solo.txt")).toBe("solo");

    // Reconciling again: nothing left to report. The attempt records that its end was reported
    // just after reporting it, so the first executor is closed (its attempt over) first.
    await ex.close();
    const again = createLocalExecutor({ stateDir, trackingUri: server.url, mlflow, projectsRoot: tmpdir(), pollMs: 50 });
    executors.push(again);
    expect(await again.reconcile(() => recorder())).toEqual([]);

    // The ended attempt's record is kept a week, then deleted when an executor starts.
    await again.close();
    const records = () => readdirSync(join(stateDir, "attempts")).filter((n) => n.endsWith(".json"));
    expect(records()).toHaveLength(1);
    const at = (days: number) => createLocalExecutor({ stateDir, trackingUri: server.url, mlflow, projectsRoot: tmpdir(), now: () => Date.now() + days * 24 * 3600_000 });
    const dayLater = at(1);
    executors.push(dayLater);
    await dayLater.reconcile(() => recorder());
    expect(records()).toHaveLength(1);
    const weekLater = at(8);
    executors.push(weekLater);
    expect(await weekLater.reconcile(() => recorder())).toEqual([]);
    expect(records()).toEqual([]);
  });
});
