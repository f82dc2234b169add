/**
 * Input windows end to end on the embedded default (issue 12), every component real: nats-server,
 * `mlflow server`, the control plane under `wrangler dev`, the agent as its own process. A
 * schedule every minute runs a DAG whose step reads a local folder with `{since: lastRun}`; the
 * test fires the Cron Trigger itself (wrangler's `/cdn-cgi/local/scheduled`, the minute ticker of
 * the launcher off) at the schedule's minutes as they come, and gives the files mtimes (`utimes`)
 * inside the minutes between ticks. Takes about six minutes: six real minute boundaries. Across the scheduled runs every file is processed
 * exactly once: also the files of a run that fails (the next successful run takes them), across
 * a tick skipped because the run before was still going (the overlap policy), and a file whose
 * mtime is exactly a tick (it belongs to the window that starts there). A tick with nothing new
 * succeeds without running a step, and the downstream step gets an empty input.
 */
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MlflowClient } from "../../proto/mlflow";
import type { AgentProcess } from "../../scripts/local/agent";
import type { Embedded } from "../../scripts/local/embedded";
import { e2eApi, fireCronTrigger, waitFor as waitUntil } from "../support/e2e-api";
import { startLocalStack } from "../support/e2e-stack";

const TOKEN = "e2e-admin-token";
const DAG = "e2e-windows";
let env: Embedded;
let agent: AgentProcess;
let state: string;
let mlflow: MlflowClient;
let INCOMING: string;
let CONTROL: string;

const e2e = e2eApi({ url: () => env.control.url, token: TOKEN, explain: () => `agent log: ${agent?.logFile}` });
const api = e2e.call;
const waitFor = <T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 60_000) =>
  waitUntil(what, fn, { timeoutMs, pollMs: 250, explain: () => `agent log: ${agent?.logFile}` });

const runOf = e2e.runOf;
const finished = (id: string) => e2e.finished(id, 90_000);
const runs = async () => (await api("GET", `/v1/runs?dag=${DAG}`)).body.items as { id: string; status: string }[];

/** Fires the Cron Trigger as Cloudflare would at `at` (wrangler runs the Worker's `scheduled`). */
async function tick(at: number) {
  await fireCronTrigger(env.control.url, at);
}

/** Fires a tick that must make a run; the run. */
async function tickRun(at: number): Promise<string> {
  const before = new Set((await runs()).map((r) => r.id));
  await tick(at);
  const made = (await runs()).filter((r) => !before.has(r.id));
  expect(made).toHaveLength(1);
  return made[0]!.id;
}

/** A file in the watched folder that "arrived" at `ms`. */
function arrive(name: string, ms: number) {
  const p = join(INCOMING, name);
  writeFileSync(p, `${name}\n`);
  utimesSync(p, ms / 1000, ms / 1000);
}

/** The files the `process` node's successful run made outputs for, and what `collect` received. */
async function outputsOf(runId: string): Promise<{ processed: string[]; collected: string[] }> {
  const experiment = await mlflow.getExperimentByName(DAG);
  const nodeRuns = await mlflow.searchAllRuns({
    experimentIds: [experiment!.experimentId],
    filter: `tags.\`parallels.runId\` = '${runId}' and tags.\`parallels.role\` = 'node' and attributes.status = 'FINISHED'`,
  });
  const of = (node: string) => nodeRuns.find((r) => r.data.tags["parallels.nodeId"] === node)!;
  const processed = (await mlflow.listArtifactsRecursive(of("process").info.runId, ""))
    .map((f) => f.path)
    .filter((p) => p.startsWith("done-"))
    .map((p) => p.slice("done-".length))
    .sort();
  const collected = (await mlflow.downloadArtifactText(of("collect").info.runId, "received.txt")).split("\n").filter(Boolean);
  return { processed, collected };
}

beforeAll(async () => {
  state = mkdtempSync(join(tmpdir(), "parallels-e2e-windows-"));
  const projects = join(state, "projects");
  INCOMING = join(projects, "incoming");
  CONTROL = join(projects, "control");
  mkdirSync(INCOMING, { recursive: true });
  mkdirSync(CONTROL);
  // One partition per file in the window. `control/fail` makes every partition exit 1;
  // `control/hold` keeps them running until it is removed (a slow run, for the overlap policy).
  const step = join(projects, "step");
  mkdirSync(step);
  writeFileSync(join(step, "MLproject"), 'entry_points:\n  main:\n    parameters:\n      control: string\n    command: "python3 step.py {control}"\n');
  writeFileSync(
    join(step, "step.py"),
    [
      "import json, os, pathlib, sys, time",
      "control = pathlib.Path(sys.argv[1])",
      "if (control / 'fail').exists():",
      "    print('told to fail', file=sys.stderr)",
      "    sys.exit(1)",
      "deadline = time.time() + 120",
      "while (control / 'hold').exists() and time.time() < deadline:",
      "    time.sleep(0.2)",
      "owned = json.loads(pathlib.Path(os.environ['PARALLELS_PARTITION_MANIFEST']).read_text())",
      "for rel in owned:",
      "    name = pathlib.Path(rel).name",
      "    pathlib.Path(os.environ['PARALLELS_OUTPUTS_DIR'], 'done-' + name).write_text(name)",
    ].join("\n"),
  );
  const collect = join(projects, "collect");
  mkdirSync(collect);
  writeFileSync(join(collect, "MLproject"), 'entry_points:\n  main:\n    command: "python3 collect.py"\n');
  writeFileSync(
    join(collect, "collect.py"),
    [
      "import os, pathlib",
      "inp = pathlib.Path(os.environ['PARALLELS_INPUTS_DIR'])",
      "names = sorted(p.relative_to(inp).as_posix() for p in inp.rglob('*') if p.is_file())",
      "pathlib.Path(os.environ['PARALLELS_OUTPUTS_DIR'], 'received.txt').write_text(''.join(n + '\\n' for n in names))",
    ].join("\n"),
  );
  ({ env, mlflow, agent } = await startLocalStack({ stateDir: state, adminToken: TOKEN, projectsRoot: projects, cronTriggers: false }));
  const dag = {
    name: DAG,
    nodes: [
      {
        id: "process",
        project: { uri: step },
        parameters: { control: CONTROL },
        inputs: { files: { uri: INCOMING, window: { since: "lastRun" } } },
        partition: { by: "object", input: "files" },
        parallelism: 4,
      },
      { id: "collect", project: { uri: collect }, inputs: { processed: { node: "process" } } },
    ],
  };
  expect((await api("PUT", `/v1/dags/${DAG}`, dag)).status).toBeLessThan(300);
}, 600_000);

afterAll(async () => {
  await agent?.stop();
  await env?.stop();
  if (state && !process.env.KEEP_E2E_STATE) rmSync(state, { recursive: true, force: true });
});

/** Waits for the real clock to reach `at` (a tick's outbox rows are sent from their time on). */
const until = (at: number) => new Promise((r) => setTimeout(r, Math.max(0, at - Date.now() + 250)));

describe("input windows, end to end", { timeout: 600_000 }, () => {
  it("a schedule every minute over a local folder with {since: lastRun}: every file once, across a failed run and a skipped tick", async () => {
    const created = await api("POST", "/v1/schedules", { name: "every-minute", dag: DAG, cron: "* * * * *", overlapPolicy: "skip" });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    // The ticks are the schedule's own minutes, fired as each comes (not ahead of the clock: a
    // run's start message leaves the outbox from the run's time on).
    const T1 = Date.parse(created.body.nextRunAt);
    const minute = (k: number) => T1 + (k - 1) * 60_000;
    const at = async (k: number) => {
      await until(minute(k));
      return minute(k);
    };
    const processedBy: Record<string, string[]> = {};
    const windowOf = async (id: string) => (await runOf(id)).windows["process.files"];

    // Run 1, window [0, T1): what was there before.
    arrive("a1.txt", T1 - 3_600_000);
    arrive("a2.txt", T1 - 1);
    arrive("late.txt", T1 + 30_000); // arrives within the next minute: not this run's
    const r1 = await tickRun(await at(1));
    expect((await finished(r1)).status).toBe("succeeded");
    expect(await windowOf(r1)).toEqual({ from: new Date(0).toISOString(), to: new Date(minute(1)).toISOString(), skipIfEmpty: true });
    processedBy.r1 = (await outputsOf(r1)).processed;
    expect(processedBy.r1).toEqual(["a1.txt", "a2.txt"]);

    // Run 2 fails (every partition exits 1, no retries): its files stay for the next successful run.
    arrive("b1.txt", minute(1)); // exactly at the tick: in the window that starts there
    writeFileSync(join(CONTROL, "fail"), "");
    const r2 = await tickRun(await at(2));
    const failed = await finished(r2);
    expect(failed.status).toBe("failed");
    expect(failed.nodes.find((n: any) => n.nodeId === "process").partitions).toMatchObject({ total: 2, failed: 2 }); // late.txt, b1.txt
    rmSync(join(CONTROL, "fail"));

    // Run 3 takes run 2's window and its own; it is held running while the next tick comes.
    arrive("c1.txt", minute(2) + 59_999);
    arrive("edge.txt", minute(3)); // exactly run 3's end: the next run's
    writeFileSync(join(CONTROL, "hold"), "");
    const r3 = await tickRun(await at(3));
    expect(await windowOf(r3)).toMatchObject({ from: new Date(minute(1)).toISOString(), to: new Date(minute(3)).toISOString() });
    await waitFor("run 3's step to be running", async () => (await runOf(r3)).nodes.find((n: any) => n.nodeId === "process").status === "running", 50_000);

    // Tick 4 while run 3 runs: skipped by the overlap policy, no run.
    arrive("d1.txt", minute(3) + 10_000);
    const before = (await runs()).length;
    await tick(await at(4));
    expect((await runs()).length).toBe(before);
    rmSync(join(CONTROL, "hold"));
    expect((await finished(r3)).status).toBe("succeeded");
    processedBy.r3 = (await outputsOf(r3)).processed;
    expect(processedBy.r3).toEqual(["b1.txt", "c1.txt", "late.txt"]);

    // Run 4 (tick 5) covers the skipped tick's minute too: [T3, T5).
    arrive("e1.txt", minute(4) + 30_000);
    const r4 = await tickRun(await at(5));
    expect(await windowOf(r4)).toMatchObject({ from: new Date(minute(3)).toISOString(), to: new Date(minute(5)).toISOString() });
    expect((await finished(r4)).status).toBe("succeeded");
    const out4 = await outputsOf(r4);
    processedBy.r4 = out4.processed;
    expect(processedBy.r4).toEqual(["d1.txt", "e1.txt", "edge.txt"]);
    expect(out4.collected).toEqual(["processed/done-d1.txt", "processed/done-e1.txt", "processed/done-edge.txt"]);

    // Run 5 (tick 6): nothing arrived — the node succeeds without running a partition and says
    // so; the downstream step runs on an empty input.
    const r5 = await tickRun(await at(6));
    const empty = await finished(r5);
    expect(empty.status).toBe("succeeded");
    const processNode = empty.nodes.find((n: any) => n.nodeId === "process");
    expect(processNode.message).toMatch(/window was empty/);
    expect(processNode.partitions).toMatchObject({ total: 0 });
    expect(await outputsOf(r5)).toEqual({ processed: [], collected: [] });

    // Every file exactly once, across all runs.
    const all = Object.values(processedBy).flat().sort();
    expect(all).toEqual(["a1.txt", "a2.txt", "b1.txt", "c1.txt", "d1.txt", "e1.txt", "edge.txt", "late.txt"]);
    expect(new Set(all).size).toBe(all.length);

    // The node's MLflow run names the window it covered.
    const experiment = await mlflow.getExperimentByName(DAG);
    const [node3] = await mlflow.searchAllRuns({
      experimentIds: [experiment!.experimentId],
      filter: `tags.\`parallels.runId\` = '${r3}' and tags.\`parallels.nodeId\` = 'process' and tags.\`parallels.role\` = 'node'`,
    });
    expect(node3!.data.tags["parallels.window.files"]).toBe(`${new Date(minute(1)).toISOString()}/${new Date(minute(3)).toISOString()}`);
  });
});
