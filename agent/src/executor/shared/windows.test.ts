// Keeping only what arrived in an input's window: the half-open test, the copy of a local folder
// by file mtime (what the local executor's preparation does), the MLflow tags and the skip rule.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { downloadInputs, listFiles } from "./artifacts";
import { emptyWindowSkip, inWindow, windowTags } from "./windows";
import { resolveInputSources } from "./inputs";
import { pathToFileURL } from "node:url";
import type { MlflowClient, Run } from "../../../../proto/mlflow";
import type { InputRef } from "../../../../proto/dag";
import { experimentRunsFilter, keptRuns, splitRunItem } from "./experiment-input";
import { AttemptFailure } from "./errors";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const temp = () => {
  const d = mkdtempSync(join(tmpdir(), "parallels-windows-"));
  dirs.push(d);
  return d;
};
/** A file written now whose mtime is `ms`. */
const fileAt = (path: string, ms: number) => {
  writeFileSync(path, path);
  utimesSync(path, ms / 1000, ms / 1000);
};
const T = 1_800_000_000_000;
const noMlflow = {} as MlflowClient; // a local folder needs no MLflow

describe("inWindow", () => {
  it("is half-open, so consecutive windows tile time: an item at exactly `to` belongs to the next", () => {
    const a = { from: T, to: T + 60_000 };
    const b = { from: T + 60_000, to: T + 120_000 };
    expect(inWindow(T - 1, a)).toBe(false);
    expect(inWindow(T, a)).toBe(true);
    expect(inWindow(T + 59_999.9, a)).toBe(true); // mtimes have sub-millisecond fractions
    expect(inWindow(T + 60_000, a)).toBe(false);
    expect(inWindow(T + 60_000, b)).toBe(true);
    for (const ms of [T, T + 1, T + 59_999.5, T + 60_000, T + 60_000.5, T + 119_999]) expect(Number(inWindow(ms, a)) + Number(inWindow(ms, b))).toBe(1);
  });
});

describe("a windowed local folder input", () => {
  it("keeps only the files (also in sub-folders, also through links) whose mtime is in [from, to), and counts them", async () => {
    const root = temp();
    const src = join(root, "incoming");
    mkdirSync(join(src, "sub"), { recursive: true });
    fileAt(join(src, "before.txt"), T - 1);
    fileAt(join(src, "first.txt"), T);
    fileAt(join(src, "sub", "inside.txt"), T + 30_000);
    fileAt(join(src, "at-to.txt"), T + 60_000);
    fileAt(join(root, "target.txt"), T + 10_000);
    symlinkSync(join(root, "target.txt"), join(src, "link.txt")); // a link's arrival is its target's
    const inputsDir = join(temp(), "inputs");
    const kept = await downloadInputs(
      { mlflow: noMlflow, experimentId: "0", parentRunId: "p", projectsRoot: root },
      { win: { uri: src, window: { since: "lastRun" } }, all: { uri: src } },
      inputsDir,
      { win: { from: T, to: T + 60_000, skipIfEmpty: true } },
    );
    expect(kept).toEqual({ win: 3 }); // only windowed inputs are counted
    expect(await listFiles(join(inputsDir, "win"))).toEqual(["first.txt", "link.txt", "sub/inside.txt"]);
    // The same folder without a window: everything, as before.
    expect(await listFiles(join(inputsDir, "all"))).toEqual(["at-to.txt", "before.txt", "first.txt", "link.txt", "sub/inside.txt"]);
  });

  it("an empty window gives an empty folder; a single-file input is kept or not by its own mtime", async () => {
    const root = temp();
    fileAt(join(root, "one.csv"), T + 5);
    const inputsDir = join(temp(), "inputs");
    const kept = await downloadInputs(
      { mlflow: noMlflow, experimentId: "0", parentRunId: "p", projectsRoot: root },
      { out: { uri: join(root, "one.csv"), window: { last: "1m" } }, inn: { uri: join(root, "one.csv"), window: { last: "1m" } } },
      inputsDir,
      { out: { from: T + 10, to: T + 20, skipIfEmpty: true }, inn: { from: T, to: T + 10, skipIfEmpty: true } },
    );
    expect(kept).toEqual({ out: 0, inn: 1 });
    expect(await listFiles(join(inputsDir, "out"))).toEqual([]);
    expect(await listFiles(join(inputsDir, "inn"))).toEqual(["one.csv"]);
  });

  it("a file:///abs/dir/ URI is the same local folder: kept by mtime", async () => {
    const root = temp();
    mkdirSync(join(root, "in"));
    fileAt(join(root, "in", "old.txt"), T - 1);
    fileAt(join(root, "in", "new.txt"), T + 1);
    const inputsDir = join(temp(), "inputs");
    const kept = await downloadInputs(
      { mlflow: noMlflow, experimentId: "0", parentRunId: "p", projectsRoot: root },
      { f: { uri: `${pathToFileURL(join(root, "in")).href}/`, window: { since: "lastRun" } } },
      inputsDir,
      { f: { from: T, to: T + 60_000, skipIfEmpty: true } },
    );
    expect(kept).toEqual({ f: 1 });
    expect(await listFiles(join(inputsDir, "f"))).toEqual(["new.txt"]);
  });

  it("a window on a single MLflow run, a URL or a bucket is refused with the reason, by both input paths", async () => {
    const w = { from: T, to: T + 1, skipIfEmpty: true };
    const ctx = { mlflow: noMlflow, experimentId: "0", parentRunId: "p", projectsRoot: temp() };
    const cases: [object, RegExp][] = [
      [{ node: "up" }, /\{node\} input: it is the upstream node's result in this same DAG run/],
      [{ run: "abc" }, /\{run\} input: one MLflow run ends once/],
      [{ uri: "runs:/abc/x" }, /runs:\/ input: one MLflow run ends once/],
      [{ uri: "https://example.com/a.csv" }, /http\(s\) input \(one file, no listing\)/],
      [{ uri: "s3://bucket/in/" }, /s3:\/\/ input: no executor here lists s3:\/\/ objects yet/],
      [{ uri: "gs://bucket/in/" }, /gs:\/\/ input/],
    ];
    for (const [ref, why] of cases) {
      const refused = downloadInputs(ctx, { x: { ...ref, window: { since: "lastRun" } } as InputRef }, join(temp(), "inputs"), { x: w });
      await expect(refused).rejects.toBeInstanceOf(AttemptFailure);
      await expect(refused).rejects.toThrow(new RegExp(`input 'x': a window is not supported on an? ${why.source}`));
      // The Kubernetes executor's sources: refused too.
      await expect(resolveInputSources(ctx, { x: { ...ref, window: { since: "lastRun" } } as InputRef }, "Kubernetes", { x: w })).rejects.toThrow(why);
    }
    // A local folder exists only for the local executor.
    await expect(resolveInputSources(ctx, { x: { uri: "incoming/", window: { since: "lastRun" } } }, "Kubernetes", { x: w })).rejects.toThrow(
      "input 'x': a window on a local folder needs the local executor: the Kubernetes executor cannot read it",
    );
  });

  it("a windowed input the run fixed no window for is refused, not read whole", async () => {
    const ctx = { mlflow: noMlflow, experimentId: "0", parentRunId: "p", projectsRoot: temp() };
    await expect(downloadInputs(ctx, { x: { experiment: "ingest", window: { since: "lastRun" } } }, join(temp(), "inputs"), {})).rejects.toThrow(
      "input 'x' has a window, but the run fixed none for it",
    );
  });
});

describe("an {experiment} input's runs", () => {
  const run = (runId: string, status: string, endTime?: number) => ({ info: { runId, status, ...(endTime !== undefined ? { endTime } : {}) }, data: { tags: {} } }) as unknown as Run;
  it("asks MLflow for the FINISHED runs that ended in [from, to)", () => {
    expect(experimentRunsFilter(undefined)).toBe("attributes.status = 'FINISHED'");
    expect(experimentRunsFilter({ from: T, to: T + 60_000 })).toBe(`attributes.status = 'FINISHED' AND attributes.end_time >= ${T} AND attributes.end_time < ${T + 60_000}`);
  });
  it("keeps, whatever the server answered, only FINISHED runs whose end is in the window, oldest end first", () => {
    const runs = [
      run("late", "FINISHED", T + 60_000),
      run("b", "FINISHED", T + 5),
      run("a", "FINISHED", T + 5),
      run("first", "FINISHED", T),
      run("before", "FINISHED", T - 1),
      run("failed", "FAILED", T + 1),
      run("running", "RUNNING"),
    ];
    expect(keptRuns(runs, { from: T, to: T + 60_000 })).toEqual(["first", "a", "b"]);
    expect(keptRuns(runs, undefined)).toEqual(["before", "first", "a", "b", "late"]);
    // Consecutive windows take each run once.
    const next = keptRuns(runs, { from: T + 60_000, to: T + 120_000 });
    expect(next).toEqual(["late"]);
  });
  it("an item is <runId>/<path below the input's path>", () => {
    expect(splitRunItem("abc/batch/x.csv")).toEqual({ runId: "abc", rest: "batch/x.csv" });
  });
});

describe("windowTags", () => {
  it("names each input's window as ISO from/to", () => {
    expect(windowTags({ files: { from: 0, to: T, skipIfEmpty: true } })).toEqual({ "parallels.window.files": `1970-01-01T00:00:00.000Z/${new Date(T).toISOString()}` });
    expect(windowTags(undefined)).toEqual({});
  });
});

describe("emptyWindowSkip", () => {
  const w = (skipIfEmpty: boolean) => ({ from: T, to: T + 60_000, skipIfEmpty });
  it("skips only when every windowed input is empty and each asks skipIfEmpty, saying which windows were empty", () => {
    const msg = emptyWindowSkip({ a: w(true) }, { a: 0 });
    expect(msg).toMatch(/window was empty/);
    expect(msg).toContain(`'a' [${new Date(T).toISOString()}, ${new Date(T + 60_000).toISOString()})`);
    expect(emptyWindowSkip({ a: w(true) }, { a: 2 })).toBeUndefined();
    expect(emptyWindowSkip({ a: w(false) }, { a: 0 })).toBeUndefined(); // runs with an empty input
    // One input with items: skipping would "take" (lose) them, since a skipped node succeeds.
    expect(emptyWindowSkip({ a: w(true), b: w(true) }, { a: 0, b: 1 })).toBeUndefined();
    expect(emptyWindowSkip({ a: w(true), b: w(false) }, { a: 0, b: 0 })).toBeUndefined();
    expect(emptyWindowSkip({ a: w(true), b: w(true) }, { a: 0, b: 0 })).toMatch(/window was empty/);
    expect(emptyWindowSkip(undefined, {})).toBeUndefined();
  });
});
