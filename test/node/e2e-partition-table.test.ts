/**
 * A node beyond the agent's limit of nested MLflow runs (issue 12), end to end on the embedded
 * default, every component real (nats-server, `mlflow server`, the control plane under
 * `wrangler dev`, the agent as its own process with `--max-partition-runs 5`): 12 partitions, of
 * which 3 and 7 fail on their first run. No partition gets a run of its own; each attempt's node
 * run holds the partitions table (`parallels/partitions.json`) and the partitions' logs under
 * `parallels/logs/partition-<i>/`; the retry runs only 3 and 7, with only their items of the
 * partitioned input, and the downstream step receives all twelve outputs.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PartitionsTable } from "../../agent/src/executor/shared/partition-runs";
import type { MlflowClient, Run } from "../../proto/mlflow";
import type { AgentProcess } from "../../scripts/local/agent";
import type { Embedded } from "../../scripts/local/embedded";
import { e2eApi } from "../support/e2e-api";
import { startLocalStack } from "../support/e2e-stack";
import { nodeRuns as nodeRunsOf } from "../support/e2e-mlflow";

const TOKEN = "e2e-admin-token";
const N = 12;
let env: Embedded;
let agent: AgentProcess;
let state: string;
let mlflow: MlflowClient;
let projects: string;

const e2e = e2eApi({ url: () => env.control.url, token: TOKEN, explain: () => `agent log: ${agent?.logFile}` });

beforeAll(async () => {
  state = mkdtempSync(join(tmpdir(), "parallels-e2e-table-"));
  projects = join(state, "projects");
  const data = join(projects, "data");
  mkdirSync(data, { recursive: true });
  for (let i = 0; i < N; i++) writeFileSync(join(data, `item-${String(i).padStart(2, "0")}.txt`), `item ${i}\n`);
  const flaky = join(projects, "flaky");
  mkdirSync(flaky);
  writeFileSync(join(flaky, "MLproject"), 'entry_points:\n  main:\n    parameters:\n      markers: {type: string, default: ""}\n    command: "python3 flaky.py {markers}"\n');
  writeFileSync(
    join(flaky, "flaky.py"),
    [
      "import json, os, pathlib, sys",
      "i = int(os.environ['PARALLELS_PARTITION_INDEX'])",
      "held = sum(1 for p in pathlib.Path(os.environ['PARALLELS_INPUTS_DIR'], 'data').iterdir())",
      "print(f'partition {i} says hello; the input holds {held} items')",
      "if i in (3, 7):",
      "    marker = pathlib.Path(sys.argv[1], str(i))",
      "    if not marker.exists():",
      "        marker.write_text('failed once')",
      "        print(f'partition {i} is flaky', file=sys.stderr)",
      "        sys.exit(5)",
      "inputs = pathlib.Path(os.environ['PARALLELS_INPUTS_DIR'])",
      "for rel in json.loads(pathlib.Path(os.environ['PARALLELS_PARTITION_MANIFEST']).read_text()):",
      "    pathlib.Path(os.environ['PARALLELS_OUTPUTS_DIR'], 'done-' + pathlib.Path(rel).name).write_text((inputs / rel).read_text().upper())",
    ].join("\n"),
  );
  const gather = join(projects, "gather");
  mkdirSync(gather);
  writeFileSync(join(gather, "MLproject"), 'entry_points:\n  main:\n    command: "python3 gather.py"\n');
  writeFileSync(
    join(gather, "gather.py"),
    [
      "import os, pathlib",
      "inp = pathlib.Path(os.environ['PARALLELS_INPUTS_DIR'])",
      "lines = sorted(f'{p.relative_to(inp).as_posix()} {p.read_text().strip()}' for p in inp.rglob('*') if p.is_file())",
      "pathlib.Path(os.environ['PARALLELS_OUTPUTS_DIR'], 'gathered.txt').write_text('\\n'.join(lines) + '\\n')",
    ].join("\n"),
  );
  ({ env, mlflow, agent } = await startLocalStack({ stateDir: state, adminToken: TOKEN, projectsRoot: projects, agentArgs: ["--max-partition-runs", "5", "--max-processes", "4"] }));
}, 600_000);

afterAll(async () => {
  await agent?.stop();
  await env?.stop();
  if (state) rmSync(state, { recursive: true, force: true });
});

const table = async (run: Run) => JSON.parse(await mlflow.downloadArtifactText(run.info.runId, "parallels/partitions.json")) as PartitionsTable;

describe("a node beyond the limit of nested runs (--max-partition-runs 5)", { timeout: 240_000 }, () => {
  it("12 partitions, 3 and 7 fail once: no partition runs, a partitions table per attempt, the retry runs only 3 and 7, the downstream step gets all twelve outputs", async () => {
    const markers = join(state, "markers");
    mkdirSync(markers);
    const id = await e2e.submit("e2e-partition-table", [
      {
        id: "work",
        project: { uri: join(projects, "flaky") },
        parameters: { markers },
        inputs: { data: { uri: join(projects, "data") } },
        partition: { by: "object", input: "data" },
        parallelism: 4,
        retries: 1,
      },
      { id: "gather", project: { uri: join(projects, "gather") }, inputs: { work: { node: "work" } } },
    ]);
    const run = await e2e.finished(id, 150_000);
    expect(run.status, JSON.stringify(run.nodes)).toBe("succeeded");
    const work = run.nodes.find((n: any) => n.nodeId === "work");
    expect(work).toMatchObject({ status: "succeeded", attempt: 2, partitions: { total: N, done: N, failed: 0 } });

    const byNode = await nodeRunsOf(mlflow, id, "e2e-partition-table");
    const [a1, a2] = byNode.get("work")!;
    expect([a1!.info.status, a2!.info.status]).toEqual(["FAILED", "FINISHED"]);
    expect(a1!.data.tags["parallels.partitions.failed"]).toBe("3,7");
    expect(a2!.data.tags).toMatchObject({ "parallels.outputsFrom": a1!.info.runId, "parallels.partitions.ran": "3,7" });
    // Beyond the limit: no run per partition, in either attempt.
    for (const a of [a1!, a2!]) expect(await mlflow.childRuns([a.info.experimentId], a.info.runId)).toEqual([]);

    // The first attempt's table: all twelve, 3 and 7 failed with their exit code, the logs where the log reader looks.
    const t1 = await table(a1!);
    expect(t1.total).toBe(N);
    expect(t1.partitions.map((p) => p.index)).toEqual([...Array(N).keys()]);
    for (const p of t1.partitions) {
      const failed = p.index === 3 || p.index === 7;
      expect(p).toMatchObject({ status: failed ? "failed" : "succeeded", exitCode: failed ? 5 : 0, items: 1 });
      expect(p.durationMs).toBeGreaterThanOrEqual(0);
      expect(p.logs).toEqual(failed ? [`parallels/logs/partition-${p.index}/stdout.log`, `parallels/logs/partition-${p.index}/stderr.log`] : [`parallels/logs/partition-${p.index}/stdout.log`]);
    }
    expect(await mlflow.downloadArtifactText(a1!.info.runId, "parallels/logs/partition-3/stderr.log")).toContain("partition 3 is flaky");
    // The first attempt had the whole input; the retry fetched only the items of the partitions it ran.
    expect(await mlflow.downloadArtifactText(a1!.info.runId, "parallels/logs/partition-0/stdout.log")).toContain(`the input holds ${N} items`);
    expect(await mlflow.downloadArtifactText(a2!.info.runId, "parallels/logs/partition-3/stdout.log")).toContain("the input holds 2 items");
    // The retry's table: only the two it ran, out of twelve.
    const t2 = await table(a2!);
    expect(t2).toMatchObject({
      total: N,
      partitions: [
        { index: 3, status: "succeeded", exitCode: 0 },
        { index: 7, status: "succeeded", exitCode: 0 },
      ],
    });
    // The control plane's log reader finds a partition's log under the node's run.
    const log = await fetch(`${env.control.url}/v1/runs/${id}/nodes/work/logs?partition=7&stream=stdout`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(log.status).toBe(200);
    expect(await log.text()).toContain("partition 7 says hello");

    // Nothing of the ten was uploaded again; the downstream step got all twelve.
    const own = (await mlflow.listArtifactsRecursive(a2!.info.runId, "")).map((f) => f.path).filter((p) => !p.startsWith("parallels/"));
    expect(own.sort()).toEqual(["done-item-03.txt", "done-item-07.txt"]);
    const gathered = await mlflow.downloadArtifactText(byNode.get("gather")![0]!.info.runId, "gathered.txt");
    expect(gathered.trim().split("\n")).toEqual([...Array(N).keys()].map((i) => `work/done-item-${String(i).padStart(2, "0")}.txt ITEM ${i}`));
  });
});
