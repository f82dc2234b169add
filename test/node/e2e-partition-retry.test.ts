/**
 * Partition-level retry end to end on the embedded default (issue 12), every component real:
 * nats-server, `mlflow server`, the control plane under `wrangler dev`, the agent as its own
 * process. A node over 10 partitions where 3 and 7 fail on their first run: the retry runs only
 * those two, the downstream step receives all ten outputs. With `minSuccessRatio` and no
 * retries, a node whose 3 and 7 always fail succeeds and names them. With no retries, the run
 * fails; resumed, the new run runs only 3 and 7, continuing the old node run.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MlflowClient, Run } from "../../proto/mlflow";
import type { AgentProcess } from "../../scripts/local/agent";
import { ROOT } from "../../scripts/local/control-plane";
import type { Embedded } from "../../scripts/local/embedded";
import { e2eApi } from "../support/e2e-api";
import { startLocalStack } from "../support/e2e-stack";
import { nodeRuns as nodeRunsOf } from "../support/e2e-mlflow";

const TOKEN = "e2e-admin-token";
let env: Embedded;
let agent: AgentProcess;
let state: string;
let mlflow: MlflowClient;
let projects: string;
let FLAKY: string;
let GATHER: string;
let DATA: string;

const e2e = e2eApi({ url: () => env.control.url, token: TOKEN, explain: () => `agent log: ${agent?.logFile}` });
const api = e2e.call;

const finished = (id: string) => e2e.finished(id, 150_000);

const submit = e2e.submit;

/** The node runs Parallels made in MLflow for a DAG run, by node id. */
const nodeRuns = (runId: string, dag: string) => nodeRunsOf(mlflow, runId, dag);

const partitionIndexes = async (run: Run) => (await mlflow.childRuns([run.info.experimentId], run.info.runId)).map((r) => Number(r.data.tags["parallels.partition.index"])).sort((a, b) => a - b);

beforeAll(async () => {
  state = mkdtempSync(join(tmpdir(), "parallels-e2e-retry-"));
  projects = join(state, "projects");
  mkdirSync(projects, { recursive: true });
  DATA = join(projects, "data");
  mkdirSync(DATA);
  for (let i = 0; i < 10; i++) writeFileSync(join(DATA, `item-${i}.txt`), `item ${i}\n`);
  // Partitions named by `fail` fail: on their first run only (a marker in `markers` says they ran), or always.
  // Each run of partition i adds an `x` to `markers/ran-<i>`: how many times each ran.
  FLAKY = join(projects, "flaky");
  mkdirSync(FLAKY);
  writeFileSync(
    join(FLAKY, "MLproject"),
    'entry_points:\n  main:\n    parameters:\n      fail: {type: string, default: ""}\n      always: {type: int, default: 0}\n      markers: {type: string, default: ""}\n    command: "python3 flaky.py {fail} {always} {markers}"\n',
  );
  writeFileSync(
    join(FLAKY, "flaky.py"),
    [
      "import json, os, pathlib, sys",
      "fail = {int(x) for x in sys.argv[1].split(',') if x}",
      "always = sys.argv[2] == '1'",
      "i = int(os.environ['PARALLELS_PARTITION_INDEX'])",
      "owned = json.loads(pathlib.Path(os.environ['PARALLELS_PARTITION_MANIFEST']).read_text())",
      "with pathlib.Path(sys.argv[3], f'ran-{i}').open('a') as ran: ran.write('x')",
      "if i in fail:",
      "    marker = pathlib.Path(sys.argv[3], str(i))",
      "    if always or not marker.exists():",
      "        marker.write_text('failed once')",
      "        print(f'partition {i} is flaky', file=sys.stderr)",
      "        sys.exit(5)",
      "inputs = pathlib.Path(os.environ['PARALLELS_INPUTS_DIR'])",
      "for rel in owned:",
      "    pathlib.Path(os.environ['PARALLELS_OUTPUTS_DIR'], 'done-' + pathlib.Path(rel).name).write_text((inputs / rel).read_text().upper())",
    ].join("\n"),
  );
  GATHER = join(projects, "gather");
  mkdirSync(GATHER);
  writeFileSync(join(GATHER, "MLproject"), 'entry_points:\n  main:\n    command: "python3 gather.py"\n');
  writeFileSync(
    join(GATHER, "gather.py"),
    [
      "import os, pathlib",
      "inp = pathlib.Path(os.environ['PARALLELS_INPUTS_DIR'])",
      "lines = sorted(f'{p.relative_to(inp).as_posix()} {p.read_text().strip()}' for p in inp.rglob('*') if p.is_file())",
      "pathlib.Path(os.environ['PARALLELS_OUTPUTS_DIR'], 'gathered.txt').write_text('\\n'.join(lines) + '\\n')",
    ].join("\n"),
  );
  cpSync(join(ROOT, "test/fixtures/projects/step"), join(projects, "_step"), { recursive: true });
  ({ env, mlflow, agent } = await startLocalStack({ stateDir: state, adminToken: TOKEN, projectsRoot: projects }));
}, 600_000);

afterAll(async () => {
  await agent?.stop();
  await env?.stop();
  if (state) rmSync(state, { recursive: true, force: true });
});

const ALL = Array.from({ length: 10 }, (_, i) => i);

describe("partition-level retry, end to end", { timeout: 240_000 }, () => {
  it("10 partitions, 3 and 7 fail once, retries: 1 → the retry runs only 3 and 7, and the downstream step gets all ten outputs", async () => {
    const markers = join(state, "markers-retry");
    mkdirSync(markers);
    const id = await submit("e2e-partition-retry", [
      { id: "work", project: { uri: FLAKY }, parameters: { fail: "3,7", markers }, inputs: { data: { uri: DATA } }, partition: { by: "object", input: "data" }, parallelism: 4, retries: 1 },
      { id: "gather", project: { uri: GATHER }, inputs: { work: { node: "work" } } },
    ]);
    const run = await finished(id);
    expect(run.status, JSON.stringify(run.nodes)).toBe("succeeded");
    const work = run.nodes.find((n: any) => n.nodeId === "work");
    expect(work).toMatchObject({ status: "succeeded", attempt: 2 });
    expect(work.partitions).toMatchObject({ total: 10, done: 10, failed: 0 });

    const byNode = await nodeRuns(id, "e2e-partition-retry");
    const [a1, a2] = byNode.get("work")!;
    expect([a1!.info.status, a2!.info.status]).toEqual(["FAILED", "FINISHED"]);
    expect(a1!.data.tags["parallels.partitions.failed"]).toBe("3,7");
    expect(a2!.data.tags).toMatchObject({ "parallels.outputsFrom": a1!.info.runId, "parallels.partitions.ran": "3,7" });
    // MLflow: ten partition runs in attempt 1, two in attempt 2.
    expect(await partitionIndexes(a1!)).toEqual(ALL);
    expect(await partitionIndexes(a2!)).toEqual([3, 7]);
    // Nothing of the eight was uploaded again: attempt 2's run holds only what 3 and 7 made.
    const own = (await mlflow.listArtifactsRecursive(a2!.info.runId, "")).map((f) => f.path).filter((p) => !p.startsWith("parallels/"));
    expect(own.sort()).toEqual(["done-item-3.txt", "done-item-7.txt"]);

    const gathered = await mlflow.downloadArtifactText(byNode.get("gather")![0]!.info.runId, "gathered.txt");
    expect(gathered.trim().split("\n")).toEqual(ALL.map((i) => `work/done-item-${i}.txt ITEM ${i}`));
  });

  it("minSuccessRatio 0.8, no retries, 3 and 7 always fail → the node succeeds naming them, and the downstream step gets the other eight", async () => {
    const markers = join(state, "markers-ratio");
    mkdirSync(markers);
    const id = await submit("e2e-partition-ratio", [
      {
        id: "work",
        project: { uri: FLAKY },
        parameters: { fail: "3,7", always: 1, markers },
        inputs: { data: { uri: DATA } },
        partition: { by: "object", input: "data" },
        parallelism: 4,
        minSuccessRatio: 0.8,
      },
      { id: "gather", project: { uri: GATHER }, inputs: { work: { node: "work" } } },
    ]);
    const run = await finished(id);
    expect(run.status, JSON.stringify(run.nodes)).toBe("succeeded");
    const work = run.nodes.find((n: any) => n.nodeId === "work");
    expect(work).toMatchObject({ status: "succeeded", attempt: 1 });
    expect(work.message).toContain("failed: 3,7");
    const node = (await api("GET", `/v1/runs/${id}/nodes/work`)).body;
    expect(node.failedPartitions).toBe("3,7");
    expect(node.partitionFailures).toEqual([
      { index: 3, exitCode: 5, stderr: "partition 3 is flaky" },
      { index: 7, exitCode: 5, stderr: "partition 7 is flaky" },
    ]);
    const byNode = await nodeRuns(id, "e2e-partition-ratio");
    const gathered = await mlflow.downloadArtifactText(byNode.get("gather")![0]!.info.runId, "gathered.txt");
    expect(gathered.trim().split("\n")).toEqual(ALL.filter((i) => i !== 3 && i !== 7).map((i) => `work/done-item-${i}.txt ITEM ${i}`));
  });
  it("no retries, 3 and 7 fail once → the run fails; resumed, the new run runs only 3 and 7 on top of the old node run, and the downstream step gets all ten outputs", async () => {
    const started = Date.now();
    const markers = join(state, "markers-resume");
    mkdirSync(markers);
    const dag = "e2e-partition-resume";
    const id = await submit(dag, [
      { id: "work", project: { uri: FLAKY }, parameters: { fail: "3,7", markers }, inputs: { data: { uri: DATA } }, partition: { by: "object", input: "data" }, parallelism: 4, retries: 0 },
      { id: "gather", project: { uri: GATHER }, inputs: { work: { node: "work" } } },
    ]);
    const failed = await finished(id);
    expect(failed.status, JSON.stringify(failed.nodes)).toBe("failed");
    expect((await api("GET", `/v1/runs/${id}/nodes/work`)).body).toMatchObject({ status: "failed", attempt: 1, failedPartitions: "3,7" });

    const resumed = await api("POST", `/v1/runs/${id}/resume`);
    expect(resumed.status).toBe(201);
    const run = await finished(resumed.body.id);
    expect(run.status, JSON.stringify(run.nodes)).toBe("succeeded");
    const work = run.nodes.find((n: any) => n.nodeId === "work");
    expect(work).toMatchObject({ status: "succeeded", attempt: 1 });
    expect(work.partitions).toMatchObject({ total: 10, done: 10, failed: 0 });
    // Each of the eight ran once in all, 3 and 7 twice (failed, then in the resumed run).
    const ran = ALL.map((i) => readFileSync(join(markers, `ran-${i}`), "utf8").length);
    expect(ran).toEqual(ALL.map((i) => (i === 3 || i === 7 ? 2 : 1)));

    // MLflow: the new run's node run continues the old one (tags), with partition runs for 3 and 7 only.
    const [old] = (await nodeRuns(id, dag)).get("work")!;
    const [now] = (await nodeRuns(resumed.body.id, dag)).get("work")!;
    expect(old!.info.status).toBe("FAILED");
    expect(now!.info.status).toBe("FINISHED");
    expect(now!.data.tags).toMatchObject({ "parallels.continues": `${id}/${id}-work`, "parallels.outputsFrom": old!.info.runId, "parallels.partitions.ran": "3,7" });
    expect(await partitionIndexes(old!)).toEqual(ALL);
    expect(await partitionIndexes(now!)).toEqual([3, 7]);
    // Nothing of the eight was uploaded again.
    const own = (await mlflow.listArtifactsRecursive(now!.info.runId, "")).map((f) => f.path).filter((p) => !p.startsWith("parallels/"));
    expect(own.sort()).toEqual(["done-item-3.txt", "done-item-7.txt"]);

    const gathered = await mlflow.downloadArtifactText((await nodeRuns(resumed.body.id, dag)).get("gather")![0]!.info.runId, "gathered.txt");
    expect(gathered.trim().split("\n")).toEqual(ALL.map((i) => `work/done-item-${i}.txt ITEM ${i}`));
    console.log(`resume e2e: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });
});
