// The local executor against a real `mlflow server` (SQLite, proxied artifacts) on 127.0.0.1:
// inline projects written to temp folders, run as real processes through bash.
import { execFileSync } from "node:child_process";
import { createServer } from "node:http";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLocalExecutor, isRetryableStartError, type LocalExecutor, type LocalExecutorOptions } from "../../agent/src/executor/local/index";
import { attemptKey } from "../../agent/src/executor/local/state";
import { makeDir, maxOverlap, recorder, type Recorder, uid, workFor } from "../../agent/src/executor/testing";
import type { AttemptRef } from "../../agent/src/executor/types";
import { createLogger } from "../../agent/src/log";
import { createWorkHandler } from "../../agent/src/work";
import { MlflowClient } from "../../proto/mlflow/index";
import { MLFLOW_START_TIMEOUT_MS, startMlflowServer, type MlflowTestServer } from "../support/mlflow-server";

let server: MlflowTestServer;
let mlflow: MlflowClient;
const cleanup: string[] = [];
const executors: LocalExecutor[] = [];

beforeAll(async () => {
  server = await startMlflowServer();
  mlflow = new MlflowClient({ trackingUri: server.url, retry: { maxRetries: 2, baseDelayMs: 50 } });
}, MLFLOW_START_TIMEOUT_MS);

afterAll(async () => {
  await Promise.all(executors.map((e) => e.close()));
  await server?.stop();
  for (const d of cleanup) rmSync(d, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  cleanup.push(d);
  return d;
}

function executor(over: Partial<LocalExecutorOptions> = {}): LocalExecutor {
  const e = createLocalExecutor({
    stateDir: tempDir("parallels-exec-state-"),
    trackingUri: server.url,
    mlflow,
    pythonBinDir: server.binDir,
    pollMs: 50,
    killGraceMs: 2_000,
    maxProcesses: 16,
    projectsRoot: tmpdir(), // the temp projects and inputs of these tests are below it
    ...over,
  });
  executors.push(e);
  return e;
}

function project(files: Record<string, string>): string {
  const d = makeDir(files);
  cleanup.push(d);
  return d;
}

/** A project whose main entry point runs these lines of Python. */
const pythonProject = (...lines: string[]) => project({ MLproject: 'entry_points:\n  main:\n    command: "python step.py"\n', "step.py": `${lines.join("\n")}\n` });

/** Python that lists the files below PARALLELS_INPUTS_DIR as `files` (and `inp`). */
const LIST_INPUTS = ["import os, pathlib", "inp = pathlib.Path(os.environ['PARALLELS_INPUTS_DIR'])", "files = sorted(p.relative_to(inp).as_posix() for p in inp.rglob('*') if p.is_file())"];

const HELLO = {
  MLproject: [
    "name: hello",
    "entry_points:",
    "  main:",
    "    parameters:",
    "      greeting: {type: string, default: hello}",
    "      who: string",
    "      times: {type: int, default: 1}",
    '    command: "python hello.py {greeting} {who} {times}"',
  ].join("\n"),
  "hello.py": [
    "import json, os, pathlib, sys",
    "greeting, who, times = sys.argv[1], sys.argv[2], int(sys.argv[3])",
    "for _ in range(times): print(f'{greeting}, {who}!')",
    "print('a warning', file=sys.stderr)",
    "keys = ['MLFLOW_RUN_ID', 'MLFLOW_TRACKING_URI', 'MLFLOW_EXPERIMENT_ID', 'PARALLELS_INPUTS_DIR', 'PARALLELS_OUTPUTS_DIR',",
    "        'PARALLELS_PARTITION_INDEX', 'PARALLELS_PARTITION_COUNT', 'PARALLELS_PARTITION_MANIFEST', 'GREETING_STYLE',",
    "        'PARALLELS_AGENT_SECRET', 'MLFLOW_TRACKING_TOKEN', 'MLFLOW_TRACKING_PASSWORD', 'HOME_MARKER']",
    "env = {k: os.environ.get(k) for k in keys}",
    "env['cwd'] = os.getcwd()",
    "out = pathlib.Path(os.environ['PARALLELS_OUTPUTS_DIR'])",
    "(out / 'env.json').write_text(json.dumps(env))",
    "(out / 'sub').mkdir()",
    "(out / 'sub' / 'greeting.txt').write_text(f'{greeting}, {who}!')",
  ].join("\n"),
};

describe("one unpartitioned step", () => {
  it("runs, reports running → succeeded with the MLflow run id, and leaves a FINISHED child run with tags, params, logs and outputs", async () => {
    const dir = project(HELLO);
    // The agent's secrets stay with the agent; the rest of its environment reaches the step.
    const ex = executor({ env: { ...process.env, PARALLELS_AGENT_SECRET: "s3cret", MLFLOW_TRACKING_TOKEN: "tok", MLFLOW_TRACKING_PASSWORD: "pw", HOME_MARKER: "kept" } });
    const rec = recorder();
    const work = workFor({ id: "hello", project: { uri: dir }, parameters: { who: "big world", times: 2 }, env: { GREETING_STYLE: "loud" } }, { dag: { name: "hellodag", version: 3 } });
    await ex.start(work, rec);
    const done = await rec.waitFor("succeeded");
    expect(rec.events[0]!.type).toBe("running");
    const runId = rec.events[0]!.mlflowRunId!;
    expect(runId).toMatch(/^[0-9a-f]{32}$/);
    expect(rec.events[0]!.counts).toEqual({ total: 1, done: 0, failed: 0, running: 0 });
    expect(done.counts).toEqual({ total: 1, done: 1, failed: 0, running: 0 });
    expect(rec.types()).toContain("progress");
    expect(rec.types().filter((t) => t === "succeeded")).toHaveLength(1);

    const run = await mlflow.getRun(runId);
    expect(run.info.status).toBe("FINISHED");
    expect(run.info.endTime).toBeGreaterThan(0);
    expect(run.info.runName).toBe("hello");
    const exp = await mlflow.getExperimentByName("hellodag");
    expect(run.info.experimentId).toBe(exp!.experimentId);
    expect(run.data.tags).toMatchObject({
      "mlflow.source.type": "PROJECT",
      "mlflow.source.name": dir,
      "mlflow.project.entryPoint": "main",
      "mlflow.project.backend": "local",
      "mlflow.runName": "hello",
      "parallels.role": "node",
      "parallels.runId": work.runId,
      "parallels.nodeId": "hello",
      "parallels.attempt": "1",
    });
    expect(run.data.tags["mlflow.project.env"]).toBeUndefined(); // MLflow sets none for --env-manager local
    expect(run.data.tags["mlflow.source.git.commit"]).toBeUndefined();
    // Params exactly as `mlflow run` logs them: declared (with defaults) then extras, shell-quoted.
    expect(run.data.params).toEqual({ greeting: "hello", who: "'big world'", times: "2" });

    const parent = await mlflow.getRun(run.data.tags["mlflow.parentRunId"]!);
    expect(parent.info.runName).toBe(`hellodag-${work.runId}`);
    expect(parent.data.tags["parallels.role"]).toBe("dag-run");
    // Only the control plane knows the DAG run is over: a node's end leaves the parent RUNNING…
    expect(parent.info.status).toBe("RUNNING");
    // …until the control plane says so (runEnded), then it is FINISHED with an end time; again: no change.
    await ex.runEnded(work.runId, "succeeded");
    const ended = await mlflow.getRun(parent.info.runId);
    expect(ended.info.status).toBe("FINISHED");
    expect(ended.info.endTime).toBeGreaterThan(0);
    await ex.runEnded(work.runId, "succeeded");
    expect((await mlflow.getRun(parent.info.runId)).info.endTime).toBe(ended.info.endTime);
    await ex.runEnded("no-such-run", "failed"); // unknown here: nothing to do, no error

    expect(await mlflow.downloadArtifactText(runId, "parallels/logs/stdout.log")).toBe("hello, big world!\nhello, big world!\n");
    expect(await mlflow.downloadArtifactText(runId, "parallels/logs/stderr.log")).toBe("a warning\n");
    expect(await mlflow.downloadArtifactText(runId, "sub/greeting.txt")).toBe("hello, big world!");
    const env = JSON.parse(await mlflow.downloadArtifactText(runId, "env.json")) as Record<string, string | null>;
    expect(env).toMatchObject({
      MLFLOW_RUN_ID: runId,
      MLFLOW_TRACKING_URI: server.url,
      MLFLOW_EXPERIMENT_ID: exp!.experimentId,
      PARALLELS_PARTITION_INDEX: null,
      PARALLELS_PARTITION_COUNT: null,
      PARALLELS_PARTITION_MANIFEST: null,
      GREETING_STYLE: "loud",
      PARALLELS_AGENT_SECRET: null,
      MLFLOW_TRACKING_TOKEN: null,
      MLFLOW_TRACKING_PASSWORD: null,
      HOME_MARKER: "kept",
      cwd: dir,
    });
    expect(statSync(join(ex.context.stateDir, "attempts", `${attemptKey(work)}.json`)).mode & 0o777).toBe(0o600);
    expect(env.PARALLELS_INPUTS_DIR).toMatch(/inputs$/);
    expect(ex.running()).toBe(0);

    // A redelivered start of the finished attempt does nothing.
    await ex.start(work, rec);
    await new Promise((r) => setTimeout(r, 200));
    expect(rec.types().filter((t) => t === "succeeded")).toHaveLength(1);
  });

  it("reports a bad parameter as failed with the engine's message, resolves start, and creates no run", async () => {
    const ex = executor();
    const rec = recorder();
    const work = workFor({ id: "bad", project: { uri: project(HELLO) }, parameters: { times: 1 } });
    await ex.start(work, rec); // resolves: the message must not be redelivered
    const failed = await rec.waitFor("failed");
    expect(failed.message).toContain("No value given for missing parameters: 'who'");
    expect(failed.message).toContain("-P who=...");
    expect(rec.events).toHaveLength(1);
    const missing = workFor({ id: "missing", project: { uri: "no/such/project" } });
    const rec2 = recorder();
    await ex.start(missing, rec2);
    expect((await rec2.waitFor("failed")).message).toMatch(/project folder not found: .*no\/such\/project/);
    // Attempts that ended in preparation leave no listener on the process slots behind.
    expect((ex.context.slots as unknown as { waiters: Set<unknown> }).waiters.size).toBe(0);
  });

  it("a step that exits non-zero is FAILED in MLflow, with the exit code and the end of stderr in the message", async () => {
    const dir = project({
      MLproject: 'entry_points:\n  main:\n    command: "python fail.py"\n',
      "fail.py": "import sys\nprint('working...')\nfor i in range(30): print(f'line {i}', file=sys.stderr)\nprint('boom: the disk is full', file=sys.stderr)\nsys.exit(3)\n",
    });
    const ex = executor();
    const rec = recorder();
    await ex.start(workFor({ id: "failing", project: { uri: dir } }), rec);
    const failed = await rec.waitFor("failed");
    expect(failed.message).toMatch(/^the step exited with code 3; last lines of stderr:\n/);
    expect(failed.message).toContain("boom: the disk is full");
    expect(failed.message).not.toContain("line 5\n"); // only the last lines
    expect(failed.counts).toEqual({ total: 1, done: 0, failed: 1, running: 0 });
    const run = await mlflow.getRun(rec.events[0]!.mlflowRunId!);
    expect(run.info.status).toBe("FAILED");
    expect(run.info.endTime).toBeGreaterThan(0);
    expect(await mlflow.downloadArtifactText(run.info.runId, "parallels/logs/stdout.log")).toBe("working...\n");
    const parentRunId = run.data.tags["mlflow.parentRunId"]!;
    expect((await mlflow.getRun(parentRunId)).info.status).toBe("RUNNING"); // a retry may follow
    await ex.runEnded(run.data.tags["parallels.runId"]!, "failed");
    const parent = await mlflow.getRun(parentRunId);
    expect(parent.info.status).toBe("FAILED");
    expect(parent.info.endTime).toBeGreaterThan(0);
  });

  it("enforces timeoutSeconds: kills the process and fails with a message", async () => {
    const dir = project({ MLproject: 'entry_points:\n  main:\n    command: "sleep 30"\n' });
    const ex = executor({ killGraceMs: 500 });
    const rec = recorder();
    const t0 = Date.now();
    await ex.start(workFor({ id: "slow", project: { uri: dir }, timeoutSeconds: 1 }), rec);
    const failed = await rec.waitFor("failed", 20_000);
    // The step sleeps 30 s: ending well before that shows it was killed, not left to finish.
    expect(Date.now() - t0).toBeLessThan(25_000);
    expect(failed.message).toContain("timed out after 1 s");
    expect((await mlflow.getRun(rec.events[0]!.mlflowRunId!)).info.status).toBe("FAILED");
  });
});

describe("parameter warnings", () => {
  it("runs a node whose float parameter is not a number, as MLflow would, but says so (node message, MLflow tag)", async () => {
    const ex = executor();
    const dir = project({
      MLproject: 'entry_points:\n  main:\n    parameters:\n      lr: {type: float, default: 0.1}\n      epochs: {type: int, default: 3}\n    command: "echo {lr} {epochs}"\n',
    });
    const rec = recorder();
    await ex.start(workFor({ id: "typo", project: { uri: dir }, parameters: { lr: "0.o1", epochs: 5 } }), rec);
    await rec.waitFor("succeeded");
    const running = rec.events.find((e) => e.type === "running")!;
    expect(running.message).toMatch(/^parameter warnings: .*lr.*0\.o1/);
    expect(running.message).not.toMatch(/epochs/);
    const run = await mlflow.getRun(running.mlflowRunId!);
    expect(run.data.tags["parallels.warnings"]).toBe(running.message);

    const clean = recorder();
    await ex.start(workFor({ id: "fine", project: { uri: dir }, parameters: { lr: 0.01 } }), clean);
    await clean.waitFor("succeeded");
    expect(clean.events.find((e) => e.type === "running")!.message).toBeUndefined();
  });

  it("says in the running message when the agent's process slots cap a node's parallelism", async () => {
    const ex = executor({ maxProcesses: 2 });
    const corpus = project(Object.fromEntries(Array.from({ length: 4 }, (_, i) => [`f${i}.txt`, `${i}`])));
    const dir = project({ MLproject: 'entry_points:\n  main:\n    command: "true"\n' });
    const node = { id: "wide", project: { uri: dir }, inputs: { d: { uri: corpus } }, partition: { by: "object" as const, input: "d" } };
    const capped = recorder();
    await ex.start(workFor({ ...node, parallelism: 4 }), capped);
    await capped.waitFor("succeeded");
    expect(capped.events.find((e) => e.type === "running")!.message).toBe("parallelism 4 capped to 2: this agent runs at most 2 step processes at once (--max-processes)");
    const fits = recorder();
    await ex.start(workFor({ ...node, id: "narrow", parallelism: 2 }), fits);
    await fits.waitFor("succeeded");
    expect(fits.events.find((e) => e.type === "running")!.message).toBeUndefined();
  });
});

describe("logs", () => {
  it("are uploaded while the step runs, not only at the end", async () => {
    const gate = tempDir("parallels-gate-");
    const dir = project({
      MLproject: 'entry_points:\n  main:\n    command: "python -u w.py"\n',
      "w.py": "import os, time\nprint('warming up')\nwhile not os.path.exists(os.environ['GO']): time.sleep(0.05)\nprint('done')\n",
    });
    const ex = executor({ logUploadMs: 200 });
    const rec = recorder();
    await ex.start(workFor({ id: "chatty", project: { uri: dir }, env: { GO: join(gate, "go") } }), rec);
    const runId = (await rec.waitFor("running")).mlflowRunId!;
    let live = "";
    const until = Date.now() + 20_000;
    while (!live.includes("warming up") && Date.now() < until) {
      live = await mlflow.downloadArtifactText(runId, "parallels/logs/stdout.log").catch(() => "");
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(live).toBe("warming up\n");
    expect((await mlflow.getRun(runId)).info.status).toBe("RUNNING");
    execFileSync("touch", [join(gate, "go")]);
    await rec.waitFor("succeeded");
    expect(await mlflow.downloadArtifactText(runId, "parallels/logs/stdout.log")).toBe("warming up\ndone\n");
  });
});

describe("partitions", () => {
  it("a node over 8 files with parallelism 3 never runs more than 3 processes and makes 8 nested runs", async () => {
    const corpus = project(Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`f${i}.txt`, `text ${i}\n`])));
    const trace = tempDir("parallels-trace-");
    const dir = project({
      MLproject: 'entry_points:\n  main:\n    parameters:\n      pause: {type: float, default: 0.4}\n    command: "python part.py {pause}"\n',
      "part.py": [
        "import json, os, pathlib, sys, time",
        "t0 = time.time()",
        "time.sleep(float(sys.argv[1]))",
        "inputs = pathlib.Path(os.environ['PARALLELS_INPUTS_DIR'])",
        "owned = json.loads(pathlib.Path(os.environ['PARALLELS_PARTITION_MANIFEST']).read_text())",
        "out = pathlib.Path(os.environ['PARALLELS_OUTPUTS_DIR'])",
        "for rel in owned: (out / ('upper-' + pathlib.Path(rel).name)).write_text((inputs / rel).read_text().upper())",
        "i = os.environ['PARALLELS_PARTITION_INDEX']",
        "print(f'partition {i} owns {owned}')",
        "rec = {'start': t0, 'end': time.time(), 'owned': owned, 'count': os.environ['PARALLELS_PARTITION_COUNT'], 'run': os.environ['MLFLOW_RUN_ID']}",
        "pathlib.Path(os.environ['TRACE'], i + '.json').write_text(json.dumps(rec))",
      ].join("\n"),
    });
    const ex = executor();
    const rec = recorder();
    await ex.start(
      workFor({
        id: "upper",
        project: { uri: dir },
        inputs: { docs: { uri: corpus } },
        partition: { by: "object", input: "docs" },
        parallelism: 3,
        env: { TRACE: trace },
      }),
      rec,
    );
    const done = await rec.waitFor("succeeded");
    expect(done.counts).toEqual({ total: 8, done: 8, failed: 0, running: 0 });
    for (const e of rec.events) expect(e.counts!.running).toBeLessThanOrEqual(3);

    const traces = readdirSync(trace).map((f) => JSON.parse(readFileSync(join(trace, f), "utf8")) as { start: number; end: number; owned: string[]; count: string; run: string });
    expect(traces).toHaveLength(8);
    expect(maxOverlap(traces)).toBeLessThanOrEqual(3);
    expect(maxOverlap(traces)).toBeGreaterThanOrEqual(2); // they did run side by side
    expect(traces.flatMap((t) => t.owned).sort()).toEqual(Array.from({ length: 8 }, (_, i) => `docs/f${i}.txt`));
    expect(new Set(traces.map((t) => t.count))).toEqual(new Set(["8"]));

    const nodeRunId = rec.events[0]!.mlflowRunId!;
    const node = await mlflow.getRun(nodeRunId);
    expect(node.info.status).toBe("FINISHED");
    const nested = await mlflow.childRuns([node.info.experimentId], nodeRunId);
    expect(nested).toHaveLength(8);
    expect(new Set(nested.map((r) => r.info.runId))).toEqual(new Set(traces.map((t) => t.run)));
    for (const r of nested) {
      expect(r.info.status).toBe("FINISHED");
      expect(r.data.tags).toMatchObject({ "parallels.role": "partition", "parallels.partition.count": "8", "mlflow.source.type": "PROJECT" });
      expect(r.data.params).toEqual({ pause: "0.4" });
    }
    const p5 = nested.find((r) => r.data.tags["parallels.partition.index"] === "5")!;
    expect(await mlflow.downloadArtifactText(p5.info.runId, "parallels/logs/stdout.log")).toBe("partition 5 owns ['docs/f5.txt']\n");
    const manifest = JSON.parse(await mlflow.downloadArtifactText(nodeRunId, "parallels/manifest.json")) as { count: number; by: string };
    expect(manifest).toMatchObject({ count: 8, by: "object", input: "docs" });
    expect(await mlflow.downloadArtifactText(nodeRunId, "upper-f7.txt")).toBe("TEXT 7\n");
  });

  it("a failing partition does not stop its siblings; the failure names it; a retry runs only it and the outputs are the union", async () => {
    const corpus = project(Object.fromEntries(Array.from({ length: 4 }, (_, i) => [`f${i}.txt`, `${i}`])));
    const markers = tempDir("parallels-markers-");
    // Partitions 1 and 2 fail on their first run only (a marker file says they ran before).
    const dir = project({
      MLproject: 'entry_points:\n  main:\n    command: "python p.py"\n',
      "p.py": [
        "import os, pathlib, sys, time",
        "i = int(os.environ['PARALLELS_PARTITION_INDEX'])",
        "pathlib.Path(os.environ['PARALLELS_OUTPUTS_DIR'], f'out-{i}.txt').write_text(f'{i} {os.environ[\"MLFLOW_RUN_ID\"]}')",
        "marker = pathlib.Path(os.environ['MARKERS'], str(i))",
        "if i in (1, 2) and not marker.exists():",
        "    marker.write_text('x'); time.sleep(0.2); print(f'partition {i} broke', file=sys.stderr); sys.exit(7)",
        "time.sleep(0.5)",
      ].join("\n"),
    });
    const ex = executor({ killGraceMs: 1_000 });
    const runId = uid("run");
    const node = { id: "partfail", project: { uri: dir }, inputs: { d: { uri: corpus } }, partition: { by: "object" as const, input: "d" }, parallelism: 2, env: { MARKERS: markers } };
    const rec = recorder();
    await ex.start(workFor(node, { runId }), rec);
    const failed = await rec.waitFor("failed", 30_000);
    expect(failed.message).toMatch(/^2 of 4 partitions failed \(1-2\); partition 1 exited with code 7; last lines of stderr:\npartition 1 broke/);
    expect(failed.failedPartitions).toBe("1-2");
    expect(failed.partitionFailures).toEqual([
      { index: 1, exitCode: 7, stderr: "partition 1 broke" },
      { index: 2, exitCode: 7, stderr: "partition 2 broke" },
    ]);
    expect(failed.final).toBeUndefined();
    expect(failed.counts).toEqual({ total: 4, done: 2, failed: 2, running: 0 });
    const run1 = rec.events[0]!.mlflowRunId!;
    const experimentId = (await mlflow.getRun(run1)).info.experimentId;
    const nested = await mlflow.childRuns([experimentId], run1);
    const byIndex = Object.fromEntries(nested.map((r) => [r.data.tags["parallels.partition.index"], r.info.status]));
    expect(byIndex).toEqual({ "0": "FINISHED", "1": "FAILED", "2": "FAILED", "3": "FINISHED" }); // all ran to their end
    const r1 = await mlflow.getRun(run1);
    expect(r1.info.status).toBe("FAILED");
    expect(r1.data.tags["parallels.partitions.failed"]).toBe("1-2");

    // Attempt 2 retries only 1 and 2, keeping the manifest and what 0 and 3 made.
    const rec2 = recorder();
    await ex.start(workFor(node, { runId, attempt: 2, retry: { attempt: 1, mlflowRunId: run1, partitions: "1-2", total: 4 } }), rec2);
    const done = await rec2.waitFor("succeeded", 30_000);
    expect(done.counts).toEqual({ total: 4, done: 4, failed: 0, running: 0 });
    expect(rec2.events[0]!.counts).toEqual({ total: 4, done: 2, failed: 0, running: 0 });
    const run2 = rec2.events[0]!.mlflowRunId!;
    const r2 = await mlflow.getRun(run2);
    expect(r2.data.tags).toMatchObject({ "parallels.outputsFrom": run1, "parallels.partitions.ran": "1-2" });
    const nested2 = await mlflow.childRuns([experimentId], run2);
    expect(nested2.map((r) => r.data.tags["parallels.partition.index"]).sort()).toEqual(["1", "2"]);
    expect(new Set(nested2.map((r) => r.data.tags["parallels.partition.count"]))).toEqual(new Set(["4"]));
    expect(
      (await mlflow.listArtifactsRecursive(run2, ""))
        .map((f) => f.path)
        .filter((p) => !p.startsWith("parallels/"))
        .sort(),
    ).toEqual(["out-1.txt", "out-2.txt"]);

    // A downstream node sees the union: 0 and 3 from attempt 1, 1 and 2 from attempt 2.
    const consumer = pythonProject(...LIST_INPUTS, "pathlib.Path(os.environ['PARALLELS_OUTPUTS_DIR'], 'seen.txt').write_text(' '.join(f + '=' + (inp / f).read_text().split()[1] for f in files))");
    const rec3 = recorder();
    await ex.start(workFor({ id: "after", project: { uri: consumer }, inputs: { up: { node: "partfail" } } }, { runId, upstream: ["partfail"] }), rec3);
    await rec3.waitFor("succeeded", 30_000);
    const seen = await mlflow.downloadArtifactText(rec3.events[0]!.mlflowRunId!, "seen.txt");
    const from = Object.fromEntries(seen.split(" ").map((kv) => kv.split("=") as [string, string]));
    const partRun = (runs: typeof nested, i: number) => runs.find((r) => r.data.tags["parallels.partition.index"] === String(i))!.info.runId;
    expect(from).toEqual({ "up/out-0.txt": partRun(nested, 0), "up/out-1.txt": partRun(nested2, 1), "up/out-2.txt": partRun(nested2, 2), "up/out-3.txt": partRun(nested, 3) });
  });

  it("a partition exiting with one of noRetryExitCodes makes the failure final; its siblings still run to their end", async () => {
    const corpus = project(Object.fromEntries(Array.from({ length: 3 }, (_, i) => [`f${i}.txt`, `${i}`])));
    const dir = project({
      MLproject: 'entry_points:\n  main:\n    command: "python p.py"\n',
      "p.py": "import os, sys, time\ni = int(os.environ['PARALLELS_PARTITION_INDEX'])\nif i == 0: sys.exit(42)\ntime.sleep(0.3)\n",
    });
    const stateDir = tempDir("parallels-exec-state-");
    const ex = executor({ stateDir });
    const rec = recorder();
    const work = workFor({ id: "noretry", project: { uri: dir }, inputs: { d: { uri: corpus } }, partition: { by: "object", input: "d" }, parallelism: 3, noRetryExitCodes: [42] });
    await ex.start(work, rec);
    const failed = await rec.waitFor("failed", 20_000);
    expect(failed).toMatchObject({ final: true, failedPartitions: "0", counts: { total: 3, done: 2, failed: 1, running: 0 } });
    expect(failed.message).toMatch(/^1 of 3 partitions failed \(0\); partition 0 exited with code 42 \(stderr was empty\)/);
    // The agent died before the report went out: a restart re-reports it with what it said about the partitions.
    await ex.close();
    const file = join(stateDir, "attempts", `${attemptKey({ nodeRunId: work.nodeRunId, attempt: 1 })}.json`);
    writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, "utf8")), finalReported: false }));
    const [again] = await executor({ stateDir }).reconcile(() => recorder());
    expect(again).toMatchObject({
      state: "failed",
      counts: { total: 3, done: 2, failed: 1, running: 0 },
      failure: { final: true, failedPartitions: "0", partitionFailures: [{ index: 0, exitCode: 42 }] },
    });
  });
});

describe("inputs", () => {
  it("an upstream node's artifacts reach PARALLELS_INPUTS_DIR; both nodes share the DAG run's parent run", async () => {
    const ex = executor();
    const runId = uid("run");
    const producer = pythonProject(
      "import os, pathlib",
      "out = pathlib.Path(os.environ['PARALLELS_OUTPUTS_DIR'])",
      "(out / 'data').mkdir()",
      "(out / 'data' / 'numbers.txt').write_text('1 2 3')",
      "(out / 'note.txt').write_text('hi')",
    );
    const consumer = pythonProject(
      ...LIST_INPUTS,
      "total = sum(int(x) for x in (inp / 'nums' / 'numbers.txt').read_text().split())",
      "pathlib.Path(os.environ['PARALLELS_OUTPUTS_DIR'], 'result.txt').write_text(f'{files} {total}')",
    );
    const r1 = recorder();
    await ex.start(workFor({ id: "produce", project: { uri: producer } }, { runId }), r1);
    await r1.waitFor("succeeded");
    const r2 = recorder();
    const w2 = workFor({ id: "consume", project: { uri: consumer }, inputs: { all: { node: "produce" }, nums: { node: "produce", path: "data" } } }, { runId, upstream: ["produce"] });
    await ex.start(w2, r2);
    await r2.waitFor("succeeded");
    const out = await mlflow.downloadArtifactText(r2.events[0]!.mlflowRunId!, "result.txt");
    // The executor's own artifacts (logs) are not part of an input.
    expect(out).toBe("['all/data/numbers.txt', 'all/note.txt', 'nums/numbers.txt'] 6");
    const a = await mlflow.getRun(r1.events[0]!.mlflowRunId!);
    const b = await mlflow.getRun(r2.events[0]!.mlflowRunId!);
    expect(a.data.tags["mlflow.parentRunId"]).toBe(b.data.tags["mlflow.parentRunId"]);

    // An upstream node that never ran: failed with a clear message; an unsupported URI scheme too.
    const r3 = recorder();
    await ex.start(workFor({ id: "orphan", project: { uri: consumer }, inputs: { x: { node: "nowhere" } } }, { runId }), r3);
    expect((await r3.waitFor("failed")).message).toContain("no FINISHED MLflow run of upstream node 'nowhere'");
    expect((await mlflow.getRun(r3.events[0]!.mlflowRunId!)).info.status).toBe("FAILED");
    const r4 = recorder();
    await ex.start(workFor({ id: "s3", project: { uri: consumer }, inputs: { x: { uri: "s3://bucket/key" } } }, { runId }), r4);
    expect((await r4.waitFor("failed")).message).toContain("URI scheme 's3:' is not supported by the local executor yet");
  });

  it("takes {uri} inputs from MLflow's runs:/ URIs and from http(s) URLs; a 404 fails the attempt without leaking the query", async () => {
    const web = createServer((req, res) => {
      if (req.url?.startsWith("/files/greeting.txt")) return void res.end("hello from the web");
      res.statusCode = 404;
      res.end("no such file");
    });
    await new Promise<void>((ok) => web.listen(0, "127.0.0.1", ok));
    const base = `http://127.0.0.1:${(web.address() as { port: number }).port}`;
    try {
      const ex = executor();
      const producer = pythonProject("import os, pathlib", "out = pathlib.Path(os.environ['PARALLELS_OUTPUTS_DIR'])", "(out / 'data').mkdir()", "(out / 'data' / 'numbers.txt').write_text('4 5')");
      const r1 = recorder();
      await ex.start(workFor({ id: "produce", project: { uri: producer } }), r1);
      await r1.waitFor("succeeded");
      const produced = r1.events[0]!.mlflowRunId!;
      const consumer = pythonProject(...LIST_INPUTS, "pathlib.Path(os.environ['PARALLELS_OUTPUTS_DIR'], 'seen.txt').write_text(f\"{files} {(inp / 'web' / 'greeting.txt').read_text()}\")");
      const r2 = recorder();
      await ex.start(workFor({ id: "consume", project: { uri: consumer }, inputs: { nums: { uri: `runs:/${produced}/data` }, web: { uri: `${base}/files/greeting.txt?sig=abc` } } }), r2);
      await r2.waitFor("succeeded");
      expect(await mlflow.downloadArtifactText(r2.events[0]!.mlflowRunId!, "seen.txt")).toBe("['nums/numbers.txt', 'web/greeting.txt'] hello from the web");

      const r3 = recorder();
      await ex.start(workFor({ id: "missing", project: { uri: consumer }, inputs: { web: { uri: `${base}/nope.csv?token=s3cr3t` } } }), r3);
      const failed = await r3.waitFor("failed");
      expect(failed.message).toContain(`input 'web': GET ${base}/nope.csv answered 404`);
      expect(failed.message).not.toContain("s3cr3t");
    } finally {
      web.close();
    }
  });

  it("uses work.mlflowParentRunId when the control plane gives one", async () => {
    const ex = executor();
    const exp = await mlflow.getOrCreateExperiment("given-parent");
    const parent = await mlflow.createRun({ experimentId: exp.experimentId, runName: "made-by-control-plane" });
    const rec = recorder();
    await ex.start(workFor({ id: "child", project: { uri: project(HELLO) }, parameters: { who: "x" } }, { experiment: "given-parent", mlflowParentRunId: parent.info.runId }), rec);
    await rec.waitFor("succeeded");
    const child = await mlflow.getRun(rec.events[0]!.mlflowRunId!);
    expect(child.data.tags["mlflow.parentRunId"]).toBe(parent.info.runId);
    expect((await mlflow.getRun(parent.info.runId)).info.status).toBe("RUNNING"); // not ours to end
  });
});

describe("projects from git", () => {
  it("checks out the requested version and tags the run with its commit", async () => {
    const repo = project({
      MLproject: 'entry_points:\n  main:\n    command: "python v.py"\n',
      "v.py": "import os, pathlib\npathlib.Path(os.environ['PARALLELS_OUTPUTS_DIR'], 'v.txt').write_text('one')\n",
    });
    const git = (...args: string[]) => execFileSync("git", args, { cwd: repo, encoding: "utf8" }).trim();
    git("init", "-q");
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "--allow-empty", "-m", "empty");
    git("add", ".");
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "one");
    const first = git("rev-parse", "HEAD");
    execFileSync("sed", ["-i", "s/'one'/'two'/", join(repo, "v.py")]);
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-am", "two");

    const ex = executor();
    const rec = recorder();
    await ex.start(workFor({ id: "versioned", project: { uri: `${repo}/.git`, version: first } }), rec);
    await rec.waitFor("succeeded");
    const run = await mlflow.getRun(rec.events[0]!.mlflowRunId!);
    expect(await mlflow.downloadArtifactText(run.info.runId, "v.txt")).toBe("one");
    expect(run.data.tags["mlflow.source.git.commit"]).toBe(first);
    expect(run.data.tags["mlflow.source.git.repoURL"]).toBe(`${repo}/.git`);
    expect(existsSync(join(ex.context.gitCacheDir))).toBe(true);

    // A local work tree in place: MLflow's source name and HEAD commit.
    const rec2 = recorder();
    await ex.start(workFor({ id: "inplace", project: { uri: repo } }), rec2);
    await rec2.waitFor("succeeded");
    const run2 = await mlflow.getRun(rec2.events[0]!.mlflowRunId!);
    expect(run2.data.tags["mlflow.source.name"]).toBe(`file://${repo}`);
    expect(run2.data.tags["mlflow.source.git.commit"]).toBe(git("rev-parse", "HEAD"));
    expect(await mlflow.downloadArtifactText(run2.info.runId, "v.txt")).toBe("two");

    // Checkouts unused for a week go (with the records of ended attempts) when an executor starts
    // (after this one has closed: the records of its attempts are still being written).
    await ex.close();
    const checkouts = () => readdirSync(ex.context.gitCacheDir).flatMap((r) => readdirSync(join(ex.context.gitCacheDir, r)));
    expect(checkouts()).toEqual([first]);
    const later = (days: number) => executor({ stateDir: ex.context.stateDir, now: () => Date.now() + days * 24 * 3600_000 });
    await later(1).reconcile(() => recorder());
    expect(checkouts()).toEqual([first]);
    await later(8).reconcile(() => recorder());
    expect(checkouts()).toEqual([]);
    expect(readdirSync(join(ex.context.stateDir, "attempts")).filter((n) => n.endsWith(".json"))).toEqual([]);
  });
});

describe("cancel", () => {
  it("kills the running process group, reports cancelled, marks the runs KILLED, and ignores a late start", async () => {
    const pids = tempDir("parallels-pids-");
    const dir = project({
      MLproject: 'entry_points:\n  main:\n    command: "python s.py & python s.py; wait"\n',
      "s.py": "import os, pathlib, time\npathlib.Path(os.environ['PIDS'], str(os.getpid())).write_text('')\ntime.sleep(60)\n",
    });
    const ex = executor({ killGraceMs: 1_000 });
    const rec = recorder();
    const work = workFor({ id: "sleepy", project: { uri: dir }, env: { PIDS: pids } });
    await ex.start(work, rec);
    await rec.waitFor("running");
    const deadline = Date.now() + 20_000;
    while (readdirSync(pids).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const procs = readdirSync(pids).map(Number);
    expect(procs).toHaveLength(2);
    expect(ex.running()).toBe(1);

    await ex.cancel({ ...work, type: "cancel" }, rec);
    expect(rec.events.at(-1)!.type).toBe("cancelled");
    // Both children of the shell are gone (or zombies waiting for init to reap them).
    const gone = (pid: number) => {
      try {
        return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.startsWith("Z");
      } catch {
        return true;
      }
    };
    const until = Date.now() + 5_000;
    while (!procs.every(gone) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect(procs.filter((p) => !gone(p))).toEqual([]);
    const killed = await mlflow.getRun(rec.events[0]!.mlflowRunId!);
    expect(killed.info.status).toBe("KILLED");
    expect(ex.running()).toBe(0);
    await ex.runEnded(work.runId, "cancelled");
    expect((await mlflow.getRun(killed.data.tags["mlflow.parentRunId"]!)).info.status).toBe("KILLED");

    const n = rec.events.length;
    await ex.start(work, rec); // a late (redelivered) start
    await ex.cancel({ ...work, type: "cancel" }, rec); // and a second cancel
    await new Promise((r) => setTimeout(r, 200));
    expect(rec.events).toHaveLength(n);
  });

  it("remembers a cancel of an attempt it never saw: the start that follows runs nothing", async () => {
    const ex = executor();
    const rec = recorder();
    const work = workFor({ id: "never", project: { uri: project(HELLO) }, parameters: { who: "nobody" } });
    await ex.cancel({ ...work, type: "cancel" }, rec);
    expect(rec.types()).toEqual(["cancelled"]);
    await ex.start(work, rec);
    await new Promise((r) => setTimeout(r, 300));
    expect(rec.types()).toEqual(["cancelled"]);
  });
});

describe("MLflow unreachable", () => {
  it("start rejects as retryable and keeps the record; the redelivered start carries on", async () => {
    const stateDir = tempDir("parallels-exec-state-");
    const down = new MlflowClient({ trackingUri: "http://127.0.0.1:9", retry: { maxRetries: 0 } });
    const ex1 = createLocalExecutor({ stateDir, trackingUri: "http://127.0.0.1:9", mlflow: down, pythonBinDir: server.binDir, projectsRoot: tmpdir(), pollMs: 50 });
    const work = workFor({ id: "later", project: { uri: project(HELLO) }, parameters: { who: "again" } });
    const rec = recorder();
    const err = await ex1.start(work, rec).catch((e: unknown) => e);
    expect(isRetryableStartError(err)).toBe(true);
    expect((err as { retryable: boolean }).retryable).toBe(true);
    expect(String(err)).toContain("no answer from the tracking server");
    expect(rec.events).toEqual([]);
    expect(ex1.running()).toBe(0);
    await ex1.close();

    const ex2 = executor({ stateDir });
    await ex2.start(work, rec);
    await rec.waitFor("succeeded");
    expect((await mlflow.getRun(rec.events[0]!.mlflowRunId!)).info.status).toBe("FINISHED");
  });
});

/** A client whose `getOrCreateExperiment` (the first MLflow call of a preparation, unless its experiment's id is cached) waits for `open()`, then fails if told to. */
class GatedMlflow extends MlflowClient {
  arrived = 0;
  failWith: Error | undefined;
  private release!: () => void;
  private readonly gate = new Promise<void>((r) => (this.release = r));
  open(): void {
    this.release();
  }
  override async getOrCreateExperiment(...args: Parameters<MlflowClient["getOrCreateExperiment"]>) {
    this.arrived++;
    await this.gate;
    if (this.failWith) throw this.failWith;
    return super.getOrCreateExperiment(...args);
  }
}

async function until(what: string, f: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("starting, with the agent's work handler", () => {
  it("--max-concurrent-attempts N lets N attempts prepare at once (an attempt in preparation counts once)", async () => {
    const gated = new GatedMlflow({ trackingUri: server.url, retry: { maxRetries: 2, baseDelayMs: 50 } });
    const ex = executor({ mlflow: gated });
    const recs = new Map<string, Recorder>();
    const reporterFor = (ref: AttemptRef) => recs.get(ref.nodeId) ?? recs.set(ref.nodeId, recorder()).get(ref.nodeId)!;
    const h = createWorkHandler({ executor: ex, reporterFor, maxConcurrent: 2, logger: createLogger({ level: "silent" }), pollMs: 50 });
    const signal = new AbortController().signal;
    const runId = uid("run");
    // Each in an experiment of its own: an experiment's id is looked up once per name (then cached), and the gate is that lookup.
    const works = ["a", "b", "c"].map((id) => workFor({ id, project: { uri: project(HELLO) }, parameters: { who: id } }, { runId, experiment: uid(`exp-${id}`) }));
    // One after the other: the first is in preparation (known to the executor) when the second comes.
    const started = [h.handleStart(works[0]!, signal)];
    await until("the first preparation under way", () => gated.arrived === 1);
    started.push(h.handleStart(works[1]!, signal));
    await until("two preparations under way", () => gated.arrived === 2);
    started.push(h.handleStart(works[2]!, signal));
    await until("the third waiting for room", () => h.waiting() === 1);
    expect(ex.running()).toBe(0); // the two in `start` are the core's to count
    gated.open();
    await Promise.all(started);
    for (const id of ["a", "b", "c"]) await recs.get(id)!.waitFor("succeeded");
    expect(gated.arrived).toBe(3);
  }, 60_000);

  it("a cancel during a preparation that then fails (retryably) ends the attempt cancelled; start resolves", async () => {
    const gated = new GatedMlflow({ trackingUri: server.url, retry: { maxRetries: 0 } });
    gated.failWith = new Error("MLflow is down");
    const ex = executor({ mlflow: gated });
    const rec = recorder();
    const work = workFor({ id: "cancelme", project: { uri: project(HELLO) }, parameters: { who: "x" } });
    const started = ex.start(work, rec).then(
      () => "resolved",
      (e: unknown) => e,
    );
    await until("the preparation at MLflow", () => gated.arrived === 1);
    const cancelled = ex.cancel({ ...work, type: "cancel" }, rec);
    const recordPath = join(ex.context.stateDir, "attempts", `${attemptKey(work)}.json`);
    await until("the cancel recorded", () => existsSync(recordPath) && JSON.parse(readFileSync(recordPath, "utf8")).cancelRequested === true);
    gated.open();
    expect(await started).toBe("resolved");
    await cancelled;
    expect(rec.types()).toEqual(["cancelled"]);
    expect(JSON.parse(readFileSync(recordPath, "utf8")).phase).toBe("cancelled");
  });

  it("abandon (the core's last delivery) fails a preparing attempt for good; after a restart a preparing record is prepared again, not reported running", async () => {
    const stateDir = tempDir("parallels-exec-state-");
    const down = new MlflowClient({ trackingUri: "http://127.0.0.1:9", retry: { maxRetries: 0 } });
    const ex1 = createLocalExecutor({ stateDir, trackingUri: "http://127.0.0.1:9", mlflow: down, pythonBinDir: server.binDir, projectsRoot: tmpdir(), pollMs: 50 });
    const runId = uid("run");
    const given = workFor({ id: "given-up", project: { uri: project(HELLO) }, parameters: { who: "a" } }, { runId });
    const later = workFor({ id: "later", project: { uri: project(HELLO) }, parameters: { who: "b" } }, { runId });
    const r1 = recorder();
    for (const w of [given, later]) expect(isRetryableStartError(await ex1.start(w, r1).catch((e: unknown) => e))).toBe(true);
    await ex1.abandon!(given, "could not start the attempt after 5 deliveries (the consumer's max_deliver): MLflow is down", r1);
    expect(r1.events).toEqual([{ type: "failed", message: expect.stringContaining("after 5 deliveries") }]);
    await ex1.close();

    const ex2 = executor({ stateDir });
    const recs = new Map<string, Recorder>();
    const recovered = await ex2.reconcile((ref) => recs.get(ref.nodeId) ?? recs.set(ref.nodeId, recorder()).get(ref.nodeId)!);
    expect(recovered).toEqual([]); // the abandoned one was reported; the preparing one is not running yet
    const done = await recs.get("later")!.waitFor("succeeded");
    expect(done.counts).toMatchObject({ total: 1, done: 1 });
    expect(recs.get("later")!.types()[0]).toBe("running");
    // The abandoned attempt never runs: a late start only finds it ended.
    const r2 = recorder();
    await ex2.start(given, r2);
    expect(r2.events).toEqual([]);
    expect(recs.has("given-up")).toBe(false);
  });
});

describe("untrusted values in the work message", () => {
  it("a git version starting with '-' is refused by the DAG schema, and never reaches git as an option", async () => {
    expect(() => workFor({ id: "v", project: { uri: "https://example.com/r.git", version: "--upload-pack=touch /tmp/x" } })).toThrow(/must not start with/);
    const repo = project({ MLproject: 'entry_points:\n  main:\n    command: "true"\n' });
    const git = (...args: string[]) => execFileSync("git", args, { cwd: repo, encoding: "utf8" }).trim();
    git("init", "-q");
    git("add", ".");
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "one");
    const marker = join(tempDir("parallels-pwn-"), "pwned");
    const work = workFor({ id: "inject", project: { uri: `${repo}/.git` } });
    work.node.project.version = `--upload-pack=touch ${marker}`; // as if the schema were bypassed
    const rec = recorder();
    await executor().start(work, rec);
    expect((await rec.waitFor("failed")).message).toMatch(/Unable to checkout version '--upload-pack=/);
    expect(existsSync(marker)).toBe(false);
  });

  it("git errors do not show the credentials of the repository URL", async () => {
    const rec = recorder();
    await executor().start(workFor({ id: "creds", project: { uri: "https://someone:hunter2@127.0.0.1:9/repo.git" } }), rec);
    const failed = await rec.waitFor("failed", 60_000);
    expect(failed.message).toContain("127.0.0.1:9");
    expect(failed.message).not.toContain("hunter2");
  });

  it("local paths must resolve below the projects root and be regular files or folders", async () => {
    const root = tempDir("parallels-root-");
    const ex = executor({ projectsRoot: root });
    mkdirSync(join(root, "proj"));
    writeFileSync(join(root, "proj", "MLproject"), 'entry_points:\n  main:\n    parameters:\n      data: {type: path, default: proj}\n    command: "ls {data}"\n');
    writeFileSync(join(root, "proj", "ok.txt"), "fine");
    symlinkSync("/etc", join(root, "etc-link"));
    mkdirSync(join(root, "mixed"));
    writeFileSync(join(root, "mixed", "ok.txt"), "fine");
    symlinkSync("/etc/hostname", join(root, "mixed", "sneaky"));
    execFileSync("mkfifo", [join(root, "fifo")]);
    const failure = async (node: Parameters<typeof workFor>[0]) => {
      const rec = recorder();
      await ex.start(workFor(node), rec);
      return (await rec.waitFor("failed")).message!;
    };
    expect(await failure({ id: "p1", project: { uri: "/etc" } })).toMatch(/project folder: \/etc is outside the projects root/);
    expect(await failure({ id: "p2", project: { uri: "../" } })).toMatch(/is outside the projects root/);
    expect(await failure({ id: "i1", project: { uri: "proj" }, inputs: { x: { uri: "/etc/hostname" } } })).toMatch(/input 'x': \/etc\/hostname is outside the projects root/);
    expect(await failure({ id: "i2", project: { uri: "proj" }, inputs: { x: { uri: "etc-link/hostname" } } })).toMatch(
      /input 'x': .*etc-link\/hostname \(\/etc\/hostname\) is outside the projects root/,
    );
    expect(await failure({ id: "i3", project: { uri: "proj" }, inputs: { x: { uri: "file:///etc/passwd" } } })).toMatch(/outside the projects root/);
    expect(await failure({ id: "i4", project: { uri: "proj" }, inputs: { x: { uri: "mixed" } } })).toMatch(/mixed\/sneaky links to \/etc\/hostname, outside the projects root/);
    expect(await failure({ id: "i5", project: { uri: "proj" }, inputs: { x: { uri: "fifo" } } })).toMatch(/input 'x': .*fifo is not a regular file or folder/);
    expect(await failure({ id: "a1", project: { uri: "proj" }, parameters: { data: "file:///etc/hostname" } })).toMatch(/path parameter \/etc\/hostname is outside the projects root/);
    expect(await failure({ id: "a2", project: { uri: "proj" }, parameters: { data: "/etc" } })).toMatch(/outside the projects root/);
    // Below the root, all is well.
    const rec = recorder();
    await ex.start(workFor({ id: "fine", project: { uri: "proj" }, inputs: { x: { uri: "proj/ok.txt" } }, parameters: { data: `file://${join(root, "proj", "ok.txt")}` } }), rec);
    await rec.waitFor("succeeded");
  });

  it("parameter names that are not plain identifiers fail the attempt (they reach the shell unquoted)", async () => {
    const rec = recorder();
    const marker = join(tempDir("parallels-pwn-"), "pwned");
    await executor().start(workFor({ id: "names", project: { uri: project(HELLO) }, parameters: { who: "x", [`a;touch ${marker};b`]: 1 } }), rec);
    expect((await rec.waitFor("failed")).message).toMatch(/parameter name "a;touch .*" not allowed: names must match/);
    expect(existsSync(marker)).toBe(false);
    expect(rec.types()).toEqual(["failed"]);
  });
});
