// The local executor's caching against a real `mlflow server`: the key it asks with, a hit that
// runs nothing and says where the result is (event and MLflow tags), a miss or a failed lookup
// that runs the step, and the warning for a git branch. The lookup is the executor's seam to the
// control plane (the core gives it `POST /v1/agent/cache`); here a function that records the asks
// and answers as told — a stand-in for the control plane, named so.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLocalExecutor, type LocalExecutor } from "../../agent/src/executor/local/index";
import { makeDir, recorder, workFor } from "../../agent/src/executor/testing";
import type { CacheLookupFn } from "../../agent/src/executor/types";
import type { CacheLookup } from "../../proto/agent";
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

/** A control-plane stand-in: records every ask, answers with `answer(ask)`. */
function lookup(answer: (ask: CacheLookup) => ReturnType<CacheLookupFn>) {
  const asks: CacheLookup[] = [];
  const fn: CacheLookupFn = (ask) => {
    asks.push(ask);
    return answer(ask);
  };
  return { asks, fn };
}

function executor(cacheLookup: CacheLookupFn): LocalExecutor {
  const e = createLocalExecutor({ stateDir: tempDir("parallels-cache-state-"), trackingUri: server.url, mlflow, pythonBinDir: server.binDir, pollMs: 50, projectsRoot: tmpdir(), cacheLookup });
  executors.push(e);
  return e;
}

/** A project whose step appends a line to `counter` (outside the project: its files are in the key) and copies its input. */
function countingProject(counter: string): string {
  const d = makeDir({
    MLproject: 'entry_points:\n  main:\n    parameters:\n      n: {type: int, default: 1}\n    command: "python step.py"\n',
    "step.py": [
      "import os, pathlib, shutil",
      `with open(${JSON.stringify(counter)}, "a") as f: f.write("ran\\n")`,
      "inp = pathlib.Path(os.environ['PARALLELS_INPUTS_DIR'])",
      "out = pathlib.Path(os.environ['PARALLELS_OUTPUTS_DIR'])",
      "(out / 'copy.txt').write_text((inp / 'data' / 'input.txt').read_text())",
    ].join("\n"),
  });
  cleanup.push(d);
  return d;
}

const runs = (counter: string) => (existsSync(counter) ? readFileSync(counter, "utf8").split("\n").filter(Boolean).length : 0);

describe("local executor: caching", () => {
  it("asks with a key of project, parameters and input contents; a miss runs, a hit runs nothing and says where the result is", async () => {
    const dir = tempDir("parallels-cache-");
    const counter = join(dir, "counter.txt");
    const data = join(dir, "data");
    execFileSync("mkdir", ["-p", data]);
    writeFileSync(join(data, "input.txt"), "one\n");
    const proj = countingProject(counter);
    const node = (extra: Partial<Parameters<typeof workFor>[0]> = {}): Parameters<typeof workFor>[0] => ({
      id: "step",
      project: { uri: proj },
      inputs: { data: { uri: data } },
      cache: true,
      ...extra,
    });

    const miss = lookup(async () => null);
    const rec = recorder();
    await executor(miss.fn).start(workFor(node(), { nodeRunId: "run1-step" }), rec);
    const done = await rec.waitFor("succeeded");
    expect(done.cachedFrom).toBeUndefined();
    expect(runs(counter)).toBe(1);
    expect(miss.asks).toEqual([{ nodeRunId: "run1-step", attempt: 1, key: expect.stringMatching(/^v1:[0-9a-f]{64}$/) }]);
    const key = miss.asks[0]!.key;
    const original = rec.events[0]!.mlflowRunId!;
    expect((await mlflow.getRun(original)).data.tags["parallels.cacheKey"]).toBe(key);

    // The same node again (another run): the same key; the hit runs nothing.
    const from = { runId: "run1", nodeRunId: "run1-step", mlflowRunId: original, finishedAt: new Date().toISOString() };
    const hit = lookup(async () => from);
    const rec2 = recorder();
    await executor(hit.fn).start(workFor(node(), { nodeRunId: "run2-step" }), rec2);
    const cached = await rec2.waitFor("succeeded");
    expect(hit.asks.map((a) => a.key)).toEqual([key]);
    expect(runs(counter)).toBe(1);
    expect(rec2.types()).toEqual(["succeeded"]);
    expect(cached.cachedFrom).toEqual({ runId: "run1", nodeRunId: "run1-step", mlflowRunId: original });
    const child = await mlflow.getRun(cached.mlflowRunId!);
    expect(child.info.status).toBe("FINISHED");
    expect(child.data.tags).toMatchObject({ "parallels.cachedFrom": "run1/run1-step", "parallels.outputsFrom": original, "parallels.cacheKey": key });
    // Nothing was copied: the cached run holds no outputs of its own.
    expect((await mlflow.listArtifactsRecursive(child.info.runId, "")).filter((f) => !f.path.startsWith("parallels"))).toEqual([]);

    // What decides the result changes → another key: an input file, a parameter, the project's files.
    const keys = new Set([key]);
    const ask = async (n: Parameters<typeof workFor>[0], id: string) => {
      const l = lookup(async () => null);
      const r = recorder();
      await executor(l.fn).start(workFor(n, { nodeRunId: id }), r);
      await r.waitFor("succeeded");
      return l.asks[0]!.key;
    };
    writeFileSync(join(data, "input.txt"), "two\n");
    keys.add(await ask(node(), "run3-step"));
    keys.add(await ask(node({ parameters: { n: 2 } }), "run4-step"));
    writeFileSync(join(proj, "extra.py"), "# a change\n");
    keys.add(await ask(node({ parameters: { n: 2 } }), "run5-step"));
    expect(keys.size).toBe(4);
    // Asked twice with nothing changed: the same key.
    expect(await ask(node({ parameters: { n: 2 } }), "run6-step")).toBe([...keys][3]);
  });

  it("a node without cache never asks; a lookup that fails runs the step", async () => {
    const dir = tempDir("parallels-cache-");
    const counter = join(dir, "counter.txt");
    const proj = countingProject(counter);
    writeFileSync(join(dir, "input.txt"), "x\n");
    const n = { id: "step", project: { uri: proj }, inputs: { data: { uri: dir } } };
    const never = lookup(async () => null);
    const rec = recorder();
    await executor(never.fn).start(workFor(n), rec);
    await rec.waitFor("succeeded");
    expect(never.asks).toEqual([]);

    const down = lookup(async () => {
      throw new Error("POST /v1/agent/cache: no answer");
    });
    const rec2 = recorder();
    await executor(down.fn).start(workFor({ ...n, cache: { maxAge: "1d" } }), rec2);
    const done = await rec2.waitFor("succeeded");
    expect(down.asks).toHaveLength(1);
    expect(done.cachedFrom).toBeUndefined();
    expect(runs(counter)).toBe(2);
  });

  it("a git project at a branch: the node's message warns that the key uses the commit the branch had at dispatch", async () => {
    const repo = makeDir({ MLproject: 'entry_points:\n  main:\n    command: "python v.py"\n', "v.py": "print('hi')\n" });
    cleanup.push(repo);
    const git = (...args: string[]) => execFileSync("git", args, { cwd: repo, encoding: "utf8" }).trim();
    git("init", "-q", "-b", "main");
    git("add", ".");
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "one");
    const commit = git("rev-parse", "HEAD");
    const l = lookup(async () => null);
    const rec = recorder();
    await executor(l.fn).start(workFor({ id: "branch", project: { uri: `${repo}/.git`, version: "main" }, cache: true }), rec);
    await rec.waitFor("succeeded");
    const running = rec.events.find((e) => e.type === "running")!;
    expect(running.message).toContain(`cache: the project is a git repository at branch or tag 'main', not a commit id; the cache key uses the commit it had at dispatch (${commit})`);
    // Pinned to the commit: no warning.
    const rec2 = recorder();
    await executor(l.fn).start(workFor({ id: "pinned", project: { uri: `${repo}/.git`, version: commit }, cache: true }), rec2);
    await rec2.waitFor("succeeded");
    expect(rec2.events.find((e) => e.type === "running")!.message ?? "").not.toContain("cache:");
    expect(l.asks).toHaveLength(2);
    // The branch and its commit are the same project: the same key.
    expect(l.asks[0]!.key).toBe(l.asks[1]!.key);
  });
});
