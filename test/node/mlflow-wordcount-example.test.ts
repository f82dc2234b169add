// examples/wordcount: the DAG validates, each project renders with the MLproject engine, and the
// three steps run by hand (rendered commands through a shell, python3, the PARALLELS_* contract of
// examples/wordcount/README.md) produce the right counts.
import { spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseDagText, resolveNodeParams, type Dag } from "../../proto/dag/index";
import { computeCommand, getEntryPoint, loadProject, resolveEnvManager } from "../../proto/mlproject/index";
// The agent reads projects from disk the same way (one implementation for Node).
import { fsProjectFiles } from "../../agent/src/executor/shared/project";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const exampleDir = join(repoRoot, "examples/wordcount");

/** Word counts computed here, independently of the Python scripts. */
function expectedCounts(): Map<string, number> {
  const counts = new Map<string, number>();
  const corpus = join(exampleDir, "corpus");
  for (const f of readdirSync(corpus).sort()) {
    for (const w of readFileSync(join(corpus, f), "utf8")
      .toLowerCase()
      .match(/[a-z]+(?:'[a-z]+)*/g) ?? []) {
      counts.set(w, (counts.get(w) ?? 0) + 1);
    }
  }
  return counts;
}
const ranked = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));

/** Run a rendered entry-point command through a shell in the project folder, as MLflow's local backend does. */
function runStep(project: string, command: string, env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((ok, fail) => {
    const child = spawn("/bin/sh", ["-c", command], { cwd: join(exampleDir, project), env: { ...process.env, ...env } });
    let out = "";
    child.stdout.on("data", (b: Buffer) => (out += b.toString()));
    child.stderr.on("data", (b: Buffer) => (out += b.toString()));
    child.once("error", fail);
    child.once("close", (code) => ok({ code, out }));
  });
}

let dag: Dag;
const commands = new Map<string, string>();
let scratch: string;

beforeAll(async () => {
  const result = parseDagText(readFileSync(join(exampleDir, "dag.yaml"), "utf8"), "yaml");
  if (!result.ok) throw new Error(`dag.yaml: ${JSON.stringify(result.problems)}`);
  dag = result.dag;
  scratch = mkdtempSync(join(tmpdir(), "wordcount-"));
  // Render each node's entry point as the executor will: the MLproject engine, DAG parameters as strings.
  for (const node of dag.nodes) {
    const dir = join(exampleDir, node.project.uri);
    const project = await loadProject(fsProjectFiles(dir), { projectDir: dir });
    expect(project.name).toBe(`wordcount-${node.id}`);
    expect(project.envConfigPath).toBeNull(); // stdlib only: no env file
    expect(resolveEnvManager(project.envType, "local")).toBe("local");
    const ep = getEntryPoint(project, node.entryPoint);
    if (!ep) throw new Error(`${node.id}: no entry point ${node.entryPoint}`);
    // With the DAG's params filled in, as the control plane dispatches the node.
    const { parameters } = resolveNodeParams(node, dag.params ?? {});
    const params = Object.fromEntries(Object.entries(parameters ?? {}).map(([k, v]) => [k, String(v)]));
    commands.set(node.id, computeCommand(ep, params));
  }
});
afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe("examples/wordcount", () => {
  it("dag.yaml validates: split → count (by object over parts, parallelism 4) → merge", () => {
    expect(dag.name).toBe("wordcount");
    expect(dag.experiment).toBe("wordcount");
    expect(dag.nodes.map((n) => n.id)).toEqual(["split", "count", "merge"]);
    const [split, count, merge] = dag.nodes;
    expect(split!.inputs).toEqual({ corpus: { uri: "./corpus" } });
    expect(count!.partition).toEqual({ by: "object", input: "parts" });
    expect(count!.parallelism).toBe(4);
    expect(count!.inputs).toEqual({ parts: { node: "split" } });
    expect(merge!.inputs).toEqual({ counts: { node: "count" } });
    for (const n of dag.nodes) {
      expect(n.project.uri.startsWith("./")).toBe(true);
      expect(existsSync(join(exampleDir, n.project.uri, "MLproject"))).toBe(true);
    }
    expect(existsSync(join(exampleDir, "corpus"))).toBe(true);
  });

  it("each project loads and renders with the MLproject engine", () => {
    expect(Object.fromEntries(commands)).toEqual({
      split: "python3 split.py --parts 4 --corpus ''",
      count: "python3 count.py --min-length 1",
      merge: "python3 merge.py --top 20",
    });
  });

  it("the three steps run in sequence with the PARALLELS_* contract and count every word once", async () => {
    const dirs = (name: string) => {
      const inputs = join(scratch, name, "inputs");
      const outputs = join(scratch, name, "outputs");
      mkdirSync(inputs, { recursive: true });
      mkdirSync(outputs, { recursive: true });
      return { PARALLELS_INPUTS_DIR: inputs, PARALLELS_OUTPUTS_DIR: outputs };
    };

    // split: input `corpus` → 4 parts.
    const split = dirs("split");
    cpSync(join(exampleDir, "corpus"), join(split.PARALLELS_INPUTS_DIR, "corpus"), { recursive: true });
    const s = await runStep("split", commands.get("split")!, split);
    expect(s.out).toContain("into 4 parts");
    expect(s.code).toBe(0);
    const parts = readdirSync(split.PARALLELS_OUTPUTS_DIR).sort();
    expect(parts).toEqual(["part-000.txt", "part-001.txt", "part-002.txt", "part-003.txt"]);
    const joined = parts.map((p) => readFileSync(join(split.PARALLELS_OUTPUTS_DIR, p), "utf8")).join("");
    expect(joined).toBe(readFileSync(join(exampleDir, "corpus/the-miller-and-the-river.txt"), "utf8"));

    // count: partition by object over `parts`: partition i owns parts/part-00i.txt. Every
    // partition sees the whole inputs folder and must read only what its manifest lists.
    const countOutputs: string[] = [];
    await Promise.all(
      parts.map(async (part, i) => {
        const d = dirs(`count-${i}`);
        cpSync(split.PARALLELS_OUTPUTS_DIR, join(d.PARALLELS_INPUTS_DIR, "parts"), { recursive: true });
        const manifest = join(scratch, `count-${i}`, "manifest.json");
        writeFileSync(manifest, JSON.stringify([`parts/${part}`]));
        const r = await runStep("count", commands.get("count")!, {
          ...d,
          PARALLELS_PARTITION_INDEX: String(i),
          PARALLELS_PARTITION_COUNT: String(parts.length),
          PARALLELS_PARTITION_MANIFEST: manifest,
        });
        expect(r.code, r.out).toBe(0);
        expect(r.out).toContain(`partition ${i}/4: 1 file(s)`);
        expect(readdirSync(d.PARALLELS_OUTPUTS_DIR)).toEqual([`counts-parts-${part.replace(/\.txt$/, "")}.json`]);
        countOutputs[i] = d.PARALLELS_OUTPUTS_DIR;
      }),
    );

    // merge: input `counts` = the outputs of every count partition (one folder each).
    const merge = dirs("merge");
    for (const [i, o] of countOutputs.entries()) cpSync(o, join(merge.PARALLELS_INPUTS_DIR, "counts", `partition-${i}`), { recursive: true });
    const m = await runStep("merge", commands.get("merge")!, merge);
    expect(m.code, m.out).toBe(0);

    const counts = JSON.parse(readFileSync(join(merge.PARALLELS_OUTPUTS_DIR, "counts.json"), "utf8")) as Record<string, number>;
    const expected = ranked(expectedCounts());
    expect(Object.entries(counts)).toEqual(expected); // same words, counts and order
    const summary = JSON.parse(readFileSync(join(merge.PARALLELS_OUTPUTS_DIR, "summary.json"), "utf8"));
    expect(summary.words).toBe(2000);
    expect(summary.distinct).toBe(expected.length);
    expect(summary.sources).toEqual(parts.map((p) => `parts/${p}`));
    const expectedTop = JSON.parse(readFileSync(join(exampleDir, "expected-top.json"), "utf8"));
    expect(summary.top).toEqual(expectedTop);
    expect(expectedTop).toEqual(expected.slice(0, 20));
  });

  it("gives the same counts however the parts are grouped, and refuses a part counted twice", async () => {
    const parts = join(scratch, "regroup", "parts");
    const corpus = join(scratch, "regroup", "split-in");
    cpSync(join(exampleDir, "corpus"), join(corpus, "corpus"), { recursive: true });
    const s = await runStep("split", commands.get("split")!, { PARALLELS_INPUTS_DIR: corpus, PARALLELS_OUTPUTS_DIR: parts });
    expect(s.code, s.out).toBe(0);
    // Two partitions owning two parts each, outputs in one folder.
    const inputs = join(scratch, "regroup", "inputs");
    const outputs = join(scratch, "regroup", "counts");
    cpSync(parts, join(inputs, "parts"), { recursive: true });
    for (const [i, owned] of [
      ["part-000.txt", "part-003.txt"],
      ["part-001.txt", "part-002.txt"],
    ].entries()) {
      const manifest = join(scratch, "regroup", `manifest-${i}.json`);
      writeFileSync(manifest, JSON.stringify(owned.map((p) => `parts/${p}`)));
      const r = await runStep("count", commands.get("count")!, {
        PARALLELS_INPUTS_DIR: inputs,
        PARALLELS_OUTPUTS_DIR: outputs,
        PARALLELS_PARTITION_INDEX: String(i),
        PARALLELS_PARTITION_COUNT: "2",
        PARALLELS_PARTITION_MANIFEST: manifest,
      });
      expect(r.code, r.out).toBe(0);
    }
    const mergeIn = join(scratch, "regroup", "merge-in");
    cpSync(outputs, join(mergeIn, "counts"), { recursive: true });
    const mergeOut = join(scratch, "regroup", "merged");
    expect((await runStep("merge", commands.get("merge")!, { PARALLELS_INPUTS_DIR: mergeIn, PARALLELS_OUTPUTS_DIR: mergeOut })).code).toBe(0);
    const counts = JSON.parse(readFileSync(join(mergeOut, "counts.json"), "utf8"));
    expect(Object.entries(counts)).toEqual(ranked(expectedCounts()));

    // The same part's counts delivered twice (say, by a partition that ran twice into two folders).
    cpSync(outputs, join(mergeIn, "counts", "again"), { recursive: true });
    const dup = await runStep("merge", commands.get("merge")!, { PARALLELS_INPUTS_DIR: mergeIn, PARALLELS_OUTPUTS_DIR: mergeOut });
    expect(dup.code).toBe(3);
    expect(dup.out).toMatch(/was counted twice/);
  });
});
