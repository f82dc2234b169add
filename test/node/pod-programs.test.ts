/**
 * The programs of a Kubernetes work pod, run in order as the kubelet would run the pod's
 * containers — but as processes on this machine, since no kubelet runs containers here (a
 * stand-in, named so): `parallels-agent pod fetch` (init container), `parallels-agent pod upload`
 * (native sidecar, started before the step and outliving it) and the step's wrapper (the `step`
 * container's `/bin/sh -c`), against a real `mlflow server` and a real git repository. Shows the
 * in-container contract is the local executor's: the partition's own slice of the input, the
 * project at its commit, MLFLOW_RUN_ID of the partition's run, outputs on the node's run, logs on
 * the partition's run. A partition retry's pod maps its Job index to the node's partition.
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NODE_ARTIFACTS, POD_ATTEMPT_VERSION, type PodAttempt } from "../../agent/src/executor/kubernetes/pod-attempt";
import { METADATA_REFUSED_EXIT, POD_ATTEMPT_ENV, POD_DIR_ENV, STEP_COMMAND_ENV, STEP_WRAPPER } from "../../agent/src/executor/kubernetes/pod-layout";
import { computeManifest } from "../../agent/src/executor/shared/manifest";
import { listSource, resolveInputSources } from "../../agent/src/executor/shared/inputs";
import { sourceMetadata } from "../../agent/src/executor/shared/metadata-store";
import { retryTags } from "../../agent/src/executor/shared/partitions";
import { MlflowClient } from "../../proto/mlflow";
import { ROOT } from "../../scripts/local/control-plane";
import { MLFLOW_START_TIMEOUT_MS, startMlflowServer, type MlflowTestServer } from "../support/mlflow-server";

let server: MlflowTestServer;
let mlflow: MlflowClient;
let dir: string;
const AGENT = join(ROOT, "agent/bin/parallels-agent");

beforeAll(async () => {
  server = await startMlflowServer();
  mlflow = new MlflowClient({ trackingUri: server.url });
  dir = mkdtempSync(join(tmpdir(), "parallels-pod-"));
}, MLFLOW_START_TIMEOUT_MS);

afterAll(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A git repository holding a project in a subfolder; its commit (made once). */
let project: { url: string; commit: string } | undefined;
function gitProject(): { url: string; commit: string } {
  project ??= makeGitProject();
  return project;
}
function makeGitProject(): { url: string; commit: string } {
  const repo = join(dir, "repo");
  const git = (...args: string[]) => execFileSync("git", ["-c", "user.email=t@example.test", "-c", "user.name=t", ...args], { cwd: repo, encoding: "utf8" }).trim();
  execFileSync("mkdir", ["-p", join(repo, "steps/count")]);
  writeFileSync(
    join(repo, "steps/count/count.py"),
    [
      "import json, os, sys",
      "inputs, outputs = os.environ['PARALLELS_INPUTS_DIR'], os.environ['PARALLELS_OUTPUTS_DIR']",
      "mine = json.load(open(os.environ['PARALLELS_PARTITION_MANIFEST']))",
      "seen = sorted(os.path.relpath(os.path.join(d, f), inputs) for d, _, fs in os.walk(inputs) for f in fs)",
      "print('partition', os.environ['PARALLELS_PARTITION_INDEX'], 'of', os.environ['PARALLELS_PARTITION_COUNT'], 'run', os.environ['MLFLOW_RUN_ID'])",
      "print('a warning', file=sys.stderr)",
      "meta = json.load(open(os.environ['PARALLELS_PARTITION_METADATA']))",
      "name = 'p' + os.environ['PARALLELS_PARTITION_INDEX'] + '.json'",
      "json.dump({'mine': mine, 'seen': seen, 'meta': meta, 'cwd_has_project': os.path.exists('count.py')}, open(os.path.join(outputs, name), 'w'))",
      "open(os.environ['PARALLELS_METADATA_FILE'], 'w').write(json.dumps({'path': name, 'metadata': {'seen': len(seen)}}) + '\\n')",
    ].join("\n"),
  );
  git("init", "-q");
  git("add", ".");
  git("commit", "-q", "-m", "project");
  return { url: `file://${repo}`, commit: git("rev-parse", "HEAD") };
}

/** The pod's containers in the kubelet's order: fetch (init), upload (native sidecar) beside the step's wrapper; both end 0. */
async function runPod(env: NodeJS.ProcessEnv): Promise<void> {
  // 1. The init container.
  execFileSync(AGENT, ["pod", "fetch"], { env, encoding: "utf8" });
  // 2. The native sidecar starts before the step and runs until the step has ended.
  const upload = spawn(AGENT, ["pod", "upload"], { env, stdio: ["ignore", "ignore", "pipe"] });
  let uploadLog = "";
  upload.stderr.on("data", (c: Buffer) => (uploadLog += c.toString()));
  const uploaded = new Promise<number | null>((r) => upload.once("exit", r));
  // 3. The step container: the wrapper with the entry point's command, on the venv's Python.
  const code = await new Promise<number | null>((r) =>
    spawn("/bin/sh", ["-c", STEP_WRAPPER], { env: { ...env, PATH: `${server.binDir}:${process.env.PATH}`, [STEP_COMMAND_ENV]: "python count.py" }, stdio: "inherit" }).once("exit", r),
  );
  expect(code).toBe(0);
  expect(await uploaded, uploadLog).toBe(0);
  expect(uploadLog).toContain("the step exited with 0; logs and outputs uploaded");
}

describe("the work pod's programs (pod runtime stand-in: containers run as local processes, in the kubelet's order)", () => {
  it("fetch puts this index's slice and the project in place; the step runs; upload sends logs to its run and outputs to the node's run", { timeout: 120_000 }, async () => {
    const { experimentId } = await mlflow.getOrCreateExperiment("pod-programs");
    // An upstream run with four files of which partition 1 owns one (by: object).
    const upstream = await mlflow.createRun({ experimentId, runName: "upstream" });
    for (const f of ["a.txt", "b.txt", "c.txt", "d.txt"]) await mlflow.uploadArtifact(upstream.info.runId, `parts/${f}`, `text of ${f}`, "text/plain");
    await mlflow.uploadArtifact(upstream.info.runId, "extra/config.json", "{}", "application/json");
    // The upstream step labelled b.txt (a stored sidecar): the agent's manifest carries it to partition 1.
    await mlflow.uploadArtifact(upstream.info.runId, "parallels/metadata/0.jsonl", '{"path":"parts/b.txt","metadata":{"label":"bee"}}\n', "application/x-ndjson");
    const nodeRun = await mlflow.createRun({ experimentId, runName: "count" });
    const parts = ["a.txt", "b.txt", "c.txt", "d.txt"];
    const manifest = computeManifest({ by: "object", input: "parts" }, 4, parts, await sourceMetadata(mlflow, { runId: upstream.info.runId, path: "parts" }, parts));
    await mlflow.uploadArtifact(nodeRun.info.runId, NODE_ARTIFACTS.manifest, JSON.stringify(manifest), "application/json");
    const partitionRuns = [];
    for (let i = 0; i < 4; i++) partitionRuns.push((await mlflow.createRun({ experimentId, runName: `count-p${i}` })).info.runId);
    await mlflow.uploadArtifact(nodeRun.info.runId, NODE_ARTIFACTS.partitionRuns, JSON.stringify(partitionRuns), "application/json");
    const { url, commit } = gitProject();

    const attempt: PodAttempt = {
      v: POD_ATTEMPT_VERSION,
      trackingUri: server.url,
      experimentId,
      nodeRunId: nodeRun.info.runId,
      partitions: 4,
      partitionInput: "parts",
      partitionRuns: true,
      inputs: { parts: { runId: upstream.info.runId, path: "parts" }, extra: { runId: upstream.info.runId, path: "extra" } },
      project: { git: url, commit, subdirectory: "steps/count" },
      logsEverySeconds: 1,
    };
    const podDir = join(dir, "pod");
    const env = { ...process.env, [POD_ATTEMPT_ENV]: JSON.stringify(attempt), [POD_DIR_ENV]: podDir, JOB_COMPLETION_INDEX: "1" };

    await runPod(env);

    // The output is on the node's run (where dependants read it), and says what the step saw.
    const out = JSON.parse(await mlflow.downloadArtifactText(nodeRun.info.runId, "p1.json")) as { mine: string[]; seen: string[]; meta: unknown; cwd_has_project: boolean };
    expect(out.mine).toEqual(["parts/b.txt"]);
    expect(out.meta).toEqual({ "parts/b.txt": { label: "bee" } });
    // Its metadata sidecar is stored checked with the node's run, not uploaded as an output.
    expect(await mlflow.downloadArtifactText(nodeRun.info.runId, "parallels/metadata/1.jsonl")).toBe('{"path":"p1.json","metadata":{"seen":2}}\n');
    expect((await mlflow.listArtifactsRecursive(nodeRun.info.runId, "")).map((f) => f.path).filter((p) => p.includes(".metadata"))).toEqual([]);
    expect(out.seen).toEqual(["extra/config.json", "parts/b.txt"]); // only its own slice of `parts`, all of `extra`
    expect(out.cwd_has_project).toBe(true);
    // Logs on the partition's own run, readable after the "pod" is gone.
    expect(await mlflow.downloadArtifactText(partitionRuns[1]!, "parallels/logs/stdout.log")).toBe(`partition 1 of 4 run ${partitionRuns[1]}\n`);
    expect(await mlflow.downloadArtifactText(partitionRuns[1]!, "parallels/logs/stderr.log")).toBe("a warning\n");
    expect(readFileSync(join(podDir, "logs/exit-code"), "utf8").trim()).toBe("0");
  });

  it("a partition retry's pod: Job index 1 of ran [1,3] runs partition 3 — its slice, its run, its outputs; downstream reads them with the earlier run's; an index beyond ran is refused", {
    timeout: 120_000,
  }, async () => {
    const { experimentId } = await mlflow.getOrCreateExperiment("pod-programs");
    const upstream = await mlflow.createRun({ experimentId, runName: "upstream-retry" });
    const parts = ["a.txt", "b.txt", "c.txt", "d.txt"];
    for (const f of parts) await mlflow.uploadArtifact(upstream.info.runId, `parts/${f}`, `text of ${f}`, "text/plain");
    // The attempt before: partitions 0 and 2 succeeded and uploaded their outputs to its run.
    const earlier = await mlflow.createRun({ experimentId, runName: "count-earlier" });
    for (const name of ["p0.json", "p2.json"]) await mlflow.uploadArtifact(earlier.info.runId, name, "{}", "application/json");
    const nodeRun = await mlflow.createRun({ experimentId, runName: "count-retry" });
    // Tagged as the agent's prepare tags a retry's run (the shared helper).
    await mlflow.setTags(nodeRun.info.runId, retryTags({ indexes: [1, 3], total: 4, doneBefore: 2, previousRunId: earlier.info.runId }));
    const manifest = computeManifest({ by: "object", input: "parts" }, 4, parts);
    await mlflow.uploadArtifact(nodeRun.info.runId, NODE_ARTIFACTS.manifest, JSON.stringify(manifest), "application/json");
    // As the agent writes it for a retry of 1 and 3: a run for those partitions only.
    const runOf1 = (await mlflow.createRun({ experimentId, runName: "count-retry-p1" })).info.runId;
    const runOf3 = (await mlflow.createRun({ experimentId, runName: "count-retry-p3" })).info.runId;
    await mlflow.uploadArtifact(nodeRun.info.runId, NODE_ARTIFACTS.partitionRuns, JSON.stringify(["", runOf1, "", runOf3]), "application/json");
    const { url, commit } = gitProject();
    const attempt: PodAttempt = {
      v: POD_ATTEMPT_VERSION,
      trackingUri: server.url,
      experimentId,
      nodeRunId: nodeRun.info.runId,
      partitions: 4,
      ran: [1, 3],
      partitionInput: "parts",
      partitionRuns: true,
      inputs: { parts: { runId: upstream.info.runId, path: "parts" } },
      project: { git: url, commit, subdirectory: "steps/count" },
      logsEverySeconds: 1,
    };
    const podDir = join(dir, "pod-retry");
    const env = { ...process.env, [POD_ATTEMPT_ENV]: JSON.stringify(attempt), [POD_DIR_ENV]: podDir, JOB_COMPLETION_INDEX: "1" };
    await runPod(env);
    const out = JSON.parse(await mlflow.downloadArtifactText(nodeRun.info.runId, "p3.json")) as { mine: string[]; seen: string[] };
    expect(out.mine).toEqual(["parts/d.txt"]);
    expect(out.seen).toEqual(["parts/d.txt"]);
    expect(await mlflow.downloadArtifactText(runOf3, "parallels/logs/stdout.log")).toBe(`partition 3 of 4 run ${runOf3}\n`);
    // Nothing of the Job's own index 1 (partition 1) was written.
    expect((await mlflow.listArtifactsRecursive(nodeRun.info.runId, "")).map((f) => f.path).filter((p) => p.endsWith(".json") && !p.startsWith("parallels/"))).toEqual(["p3.json"]);
    // A downstream node's input {node: count} is this run and the one it continues: every output.
    const sources = await resolveInputSources({ mlflow, experimentId, parentRunId: "unused", upstreamRuns: { count: nodeRun.info.runId } }, { counted: { node: "count" } }, "Kubernetes");
    expect((await listSource(mlflow, sources.counted!)).sort()).toEqual(["p0.json", "p2.json", "p3.json"]);

    let message = "";
    try {
      execFileSync(AGENT, ["pod", "fetch"], { env: { ...env, [POD_DIR_ENV]: join(dir, "pod-retry-2"), JOB_COMPLETION_INDEX: "2" }, encoding: "utf8", stdio: "pipe" });
    } catch (e) {
      message = String((e as { stderr?: string }).stderr);
    }
    expect(message).toContain("Job index 2 is outside the 2 partitions this Job runs (1,3)");
  });

  it("a failing step's exit code and the end of its stderr are what the wrapper leaves", async () => {
    const podDir = join(dir, "pod-fail");
    execFileSync("mkdir", ["-p", join(podDir, "run"), join(podDir, "logs"), join(podDir, "project")]);
    writeFileSync(join(podDir, "run/env"), `PARALLELS_PROJECT_DIR='${join(podDir, "project")}'\nMLFLOW_RUN_ID='x'\n`);
    const code = await new Promise<number | null>((r) =>
      spawn("/bin/sh", ["-c", STEP_WRAPPER], { env: { ...process.env, [POD_DIR_ENV]: podDir, [STEP_COMMAND_ENV]: "echo boom >&2; exit 42" }, stdio: "ignore" }).once("exit", r),
    );
    expect(code).toBe(42);
    expect(readFileSync(join(podDir, "logs/exit-code"), "utf8").trim()).toBe("42");
    expect(readFileSync(join(podDir, "logs/stderr.log"), "utf8")).toBe("boom\n");
  });

  it("a step that succeeds with a metadata line that is not JSON fails its index with the local executor's message; its outputs still go up, the sidecar is not stored", {
    timeout: 60_000,
  }, async () => {
    const { experimentId } = await mlflow.getOrCreateExperiment("pod-programs");
    const nodeRun = await mlflow.createRun({ experimentId, runName: "labels" });
    const podDir = join(dir, "pod-bad-metadata");
    const project = join(dir, "project-bad-metadata");
    mkdirSync(project, { recursive: true });
    const attempt: PodAttempt = {
      v: POD_ATTEMPT_VERSION,
      trackingUri: server.url,
      experimentId,
      nodeRunId: nodeRun.info.runId,
      partitions: 1,
      partitionRuns: false,
      inputs: {},
      project: { dir: project },
      logsEverySeconds: 1,
    };
    const env = { ...process.env, [POD_ATTEMPT_ENV]: JSON.stringify(attempt), [POD_DIR_ENV]: podDir, JOB_COMPLETION_INDEX: "0" };
    execFileSync(AGENT, ["pod", "fetch"], { env, encoding: "utf8" });
    const upload = spawn(AGENT, ["pod", "upload"], { env, stdio: ["ignore", "ignore", "pipe"] });
    let uploadLog = "";
    upload.stderr.on("data", (c: Buffer) => (uploadLog += c.toString()));
    const uploaded = new Promise<number | null>((r) => upload.once("exit", r));
    const step = spawn("/bin/sh", ["-c", STEP_WRAPPER], {
      env: { ...env, [STEP_COMMAND_ENV]: 'echo cat >"$PARALLELS_OUTPUTS_DIR/img-1.txt"; echo "not json" >"$PARALLELS_METADATA_FILE"' },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stepStderr = "";
    step.stderr.on("data", (c: Buffer) => (stepStderr += c.toString()));
    const code = await new Promise<number | null>((r) => step.once("exit", r));
    // The step exited 0; its wrapper waited for the sidecar's verdict and failed the index with it.
    expect(readFileSync(join(podDir, "logs/exit-code"), "utf8").trim()).toBe("0");
    expect(code).toBe(METADATA_REFUSED_EXIT);
    expect(stepStderr).toMatch(/^output metadata refused: \.metadata\.jsonl line 1: not JSON \(/);
    expect(await uploaded, uploadLog).toBe(0);
    expect(uploadLog).toContain("output metadata refused: .metadata.jsonl line 1: not JSON (");
    expect(await mlflow.downloadArtifactText(nodeRun.info.runId, "img-1.txt")).toBe("cat\n");
    expect((await mlflow.listArtifactsRecursive(nodeRun.info.runId, "")).map((f) => f.path).filter((p) => p.includes("metadata"))).toEqual([]);
  });

  it("refuses to run without its attempt, naming what is missing", () => {
    let message = "";
    try {
      execFileSync(AGENT, ["pod", "fetch"], { env: { ...process.env, [POD_ATTEMPT_ENV]: "" }, encoding: "utf8", stdio: "pipe" });
    } catch (e) {
      message = String((e as { stderr?: string }).stderr);
    }
    expect(message).toContain(`${POD_ATTEMPT_ENV} is not set`);
  });
});
