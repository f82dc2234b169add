/**
 * Metadata on outputs end to end on the embedded default (issue 12), every component real:
 * nats-server, `mlflow server`, the control plane under `wrangler dev`, the agent as its own
 * process. Step one (one partition per file; partition 1 fails once, leaving half a sidecar line
 * that does not fail the node, so its outputs and metadata come from a partition retry) labels each output through its metadata sidecar; two dependants
 * partition on the `label` field — by regex and by hash — and every partition holds exactly the
 * items of its key (read from their outputs in MLflow). A sidecar line that is not JSON fails
 * the node with a message naming the sidecar and the line.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fnv1a32 } from "../../agent/src/executor/shared/manifest";
import type { MlflowClient, Run } from "../../proto/mlflow";
import type { AgentProcess } from "../../scripts/local/agent";
import type { Embedded } from "../../scripts/local/embedded";
import { e2eApi } from "../support/e2e-api";
import { startLocalStack } from "../support/e2e-stack";
import { nodeRuns as nodeRunsOf } from "../support/e2e-mlflow";

const TOKEN = "e2e-admin-token";
let env: Embedded;
let agent: AgentProcess;
let state: string;
let mlflow: MlflowClient;
let LABEL: string;
let GROUP: string;
let DATA: string;

const e2e = e2eApi({ url: () => env.control.url, token: TOKEN, explain: () => `agent log: ${agent?.logFile}` });

const finished = (id: string) => e2e.finished(id, 120_000);

const submit = e2e.submit;

/** The node runs Parallels made in MLflow for a DAG run, by node id, oldest attempt first. */
const nodeRuns = (runId: string, dag: string) => nodeRunsOf(mlflow, runId, dag);

const LABELS = ["cat", "dog", "owl"];
const ITEMS = [0, 1, 2, 3, 4, 5];
const labelOf = (n: number) => LABELS[n % 3]!;

beforeAll(async () => {
  state = mkdtempSync(join(tmpdir(), "parallels-e2e-metadata-"));
  const projects = join(state, "projects");
  mkdirSync(projects, { recursive: true });
  DATA = join(projects, "data");
  mkdirSync(DATA);
  for (const n of ITEMS) writeFileSync(join(DATA, `item-${n}.txt`), `item ${n}\n`);
  // One output per owned file, labelled in the partition's sidecar; partition `fail` fails on
  // its first run (a marker says it ran), partition `broken` writes a line that is not JSON.
  LABEL = join(projects, "label");
  mkdirSync(LABEL);
  writeFileSync(
    join(LABEL, "MLproject"),
    'entry_points:\n  main:\n    parameters:\n      fail: {type: string, default: "none"}\n      broken: {type: string, default: "none"}\n      markers: {type: string, default: "none"}\n    command: "python3 label.py {fail} {broken} {markers}"\n',
  );
  writeFileSync(
    join(LABEL, "label.py"),
    [
      "import json, os, pathlib, sys",
      "fail, broken, markers = sys.argv[1:4]",
      "i = os.environ['PARALLELS_PARTITION_INDEX']",
      "owned = json.loads(pathlib.Path(os.environ['PARALLELS_PARTITION_MANIFEST']).read_text())",
      "if i == fail:",
      "    marker = pathlib.Path(markers, i)",
      "    if not marker.exists():",
      "        marker.write_text('failed once')",
      "        open(os.environ['PARALLELS_METADATA_FILE'], 'w').write('{\"path\": \"out-')  # stops mid-line",
      "        sys.exit(5)",
      `labels = ${JSON.stringify(LABELS)}`,
      "out = pathlib.Path(os.environ['PARALLELS_OUTPUTS_DIR'])",
      "with open(os.environ['PARALLELS_METADATA_FILE'], 'w') as meta:",
      "    for rel in owned:",
      "        n = int(pathlib.Path(rel).stem.split('-')[1])",
      "        (out / f'out-{n}.txt').write_text(str(n))",
      "        line = 'not json' if i == broken else json.dumps({'path': f'out-{n}.txt', 'metadata': {'label': labels[n % 3], 'n': n}})",
      "        meta.write(line + '\\n')",
    ].join("\n"),
  );
  // What a partition of a dependant received: its items and their metadata.
  GROUP = join(projects, "group");
  mkdirSync(GROUP);
  writeFileSync(join(GROUP, "MLproject"), 'entry_points:\n  main:\n    command: "python3 group.py"\n');
  writeFileSync(
    join(GROUP, "group.py"),
    [
      "import json, os, pathlib",
      "i = os.environ['PARALLELS_PARTITION_INDEX']",
      "owned = json.loads(pathlib.Path(os.environ['PARALLELS_PARTITION_MANIFEST']).read_text())",
      "meta = json.loads(pathlib.Path(os.environ['PARALLELS_PARTITION_METADATA']).read_text())",
      "got = {'items': owned, 'metadata': [meta.get(rel) for rel in owned]}",
      "pathlib.Path(os.environ['PARALLELS_OUTPUTS_DIR'], f'partition-{i}.json').write_text(json.dumps(got))",
    ].join("\n"),
  );
  ({ env, mlflow, agent } = await startLocalStack({ stateDir: state, adminToken: TOKEN, projectsRoot: projects }));
}, 600_000);

afterAll(async () => {
  await agent?.stop();
  await env?.stop();
  if (state) rmSync(state, { recursive: true, force: true });
});

/** What each partition of a dependant's run received, by partition index. */
async function received(run: Run): Promise<Map<number, { items: string[]; metadata: ({ label: string; n: number } | null)[] }>> {
  const out = new Map<number, { items: string[]; metadata: ({ label: string; n: number } | null)[] }>();
  for (const f of await mlflow.listArtifactsRecursive(run.info.runId, "")) {
    const m = /^partition-(\d+)\.json$/.exec(f.path);
    if (m) out.set(Number(m[1]), JSON.parse(await mlflow.downloadArtifactText(run.info.runId, f.path)));
  }
  return out;
}

describe("metadata on outputs, end to end", { timeout: 180_000 }, () => {
  it("step one labels its outputs; dependants partitioned on the label (regex, hash) get exactly the items of their key, with their metadata", async () => {
    const markers = join(state, "markers");
    mkdirSync(markers);
    const labelled = { labelled: { node: "label" } };
    const id = await submit("e2e-output-metadata", [
      { id: "label", project: { uri: LABEL }, parameters: { fail: "1", markers }, inputs: { data: { uri: DATA } }, partition: { by: "object", input: "data" }, parallelism: 3, retries: 1 },
      { id: "by-regex", project: { uri: GROUP }, inputs: labelled, partition: { by: "regex", input: "labelled", metadata: "label", pattern: "^(cat|dog)$" } },
      { id: "by-hash", project: { uri: GROUP }, inputs: labelled, partition: { by: "hash", input: "labelled", key: { metadata: "label" }, partitions: 4 } },
    ]);
    const run = await finished(id);
    expect(run.status, JSON.stringify(run.nodes)).toBe("succeeded");
    expect(run.nodes.find((n: any) => n.nodeId === "label")).toMatchObject({ status: "succeeded", attempt: 2 });
    const byNode = await nodeRuns(id, "e2e-output-metadata");

    // Step one: the sidecars are stored checked, merged into one file per attempt (the retried
    // partition's on the retry's run; the failed partition's half line nowhere), and are not outputs.
    const [a1, a2] = byNode.get("label")!;
    const files = async (r: Run) => (await mlflow.listArtifactsRecursive(r.info.runId, "")).map((f) => f.path).filter((p) => !p.startsWith("parallels/logs") && p !== "parallels/manifest.json");
    expect((await files(a1!)).sort()).toEqual(["out-0.txt", "out-2.txt", "out-3.txt", "out-4.txt", "out-5.txt", "parallels/metadata/outputs.jsonl"].sort());
    expect(await files(a2!)).toEqual(["out-1.txt", "parallels/metadata/outputs.jsonl"].sort());
    const line = (n: number) => `${JSON.stringify({ path: `out-${n}.txt`, metadata: { label: labelOf(n), n } })}\n`;
    expect(await mlflow.downloadArtifactText(a1!.info.runId, "parallels/metadata/outputs.jsonl")).toBe([0, 2, 3, 4, 5].map(line).join(""));
    expect(await mlflow.downloadArtifactText(a2!.info.runId, "parallels/metadata/outputs.jsonl")).toBe(line(1));

    // Regex on the label: one partition per matching label, holding exactly its items; owls in none.
    const regex = await received(byNode.get("by-regex")![0]!);
    const groups = [...regex.values()].map((g) => ({ label: g.metadata[0]?.label, items: g.items }));
    expect(groups.sort((a, b) => String(a.label).localeCompare(String(b.label)))).toEqual(
      ["cat", "dog"].map((label) => ({ label, items: ITEMS.filter((n) => labelOf(n) === label).map((n) => `labelled/out-${n}.txt`) })),
    );
    for (const g of regex.values()) expect(g.metadata.map((m) => m && labelOf(m.n) === m.label)).toEqual(g.items.map(() => true));

    // Hash on the label: every item in the bucket its label decides, with its metadata.
    const hash = await received(byNode.get("by-hash")![0]!);
    const buckets = [0, 1, 2, 3].map((b) => ITEMS.filter((n) => fnv1a32(labelOf(n)) % 4 === b).map((n) => `labelled/out-${n}.txt`));
    expect([0, 1, 2, 3].map((b) => hash.get(b)?.items ?? [])).toEqual(buckets);
    for (const g of hash.values()) expect(g.metadata).toEqual(g.items.map((rel) => ((n) => ({ label: labelOf(n), n }))(Number(/out-(\d+)/.exec(rel)![1]))));
  });

  it("a sidecar line that is not JSON fails the node, naming the sidecar and the line", async () => {
    const id = await submit("e2e-output-metadata-bad", [
      { id: "label", project: { uri: LABEL }, parameters: { broken: "2" }, inputs: { data: { uri: DATA } }, partition: { by: "object", input: "data" }, parallelism: 3 },
      { id: "by-regex", project: { uri: GROUP }, inputs: { labelled: { node: "label" } }, partition: { by: "regex", input: "labelled", metadata: "label", pattern: "." } },
    ]);
    const run = await finished(id);
    expect(run.status).toBe("failed");
    const label = run.nodes.find((n: any) => n.nodeId === "label");
    expect(label.status).toBe("failed");
    expect(label.message).toMatch(/^output metadata refused: \.metadata\/2\.jsonl line 1: not JSON \(/);
  });
});
