import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { durationMs, nodeWindows, resolveWindows } from "./windows";
import { validateDag } from "./validate";

const dagWith = (window: unknown) => {
  const r = validateDag({ name: "d", nodes: [{ id: "a", project: { uri: "x" }, inputs: { files: { uri: "incoming/", window } } }] });
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.dag;
};
const T = Date.UTC(2026, 11, 1, 12, 0);

describe("input windows", () => {
  it("resolves each form at the run's time", () => {
    expect(resolveWindows(dagWith({ last: "15m" }), T, null)).toEqual({ "a.files": { from: T - 15 * 60_000, to: T, skipIfEmpty: true } });
    expect(resolveWindows(dagWith({ from: "2026-12-01T00:00:00Z", skipIfEmpty: false }), T, null)).toEqual({ "a.files": { from: Date.UTC(2026, 11, 1), to: T, skipIfEmpty: false } });
    // The first run since nothing: everything until its time; the next, from where that one ended.
    expect(resolveWindows(dagWith({ since: "lastRun" }), T, null)!["a.files"]).toMatchObject({ from: 0, to: T });
    expect(resolveWindows(dagWith({ since: "lastRun" }), T + 60_000, { "a.files": { from: 0, to: T, skipIfEmpty: true } })!["a.files"]).toMatchObject({ from: T, to: T + 60_000 });
    expect(nodeWindows(resolveWindows(dagWith({ last: "1h" }), T, null), "a")).toEqual({ files: { from: T - 3_600_000, to: T, skipIfEmpty: true } });
    expect(durationMs("2d")).toBe(172_800_000);
  });

  it("consecutive `since: lastRun` windows cover time without gap or overlap, whichever runs fail", () => {
    fc.assert(
      fc.property(fc.array(fc.record({ gap: fc.integer({ min: 1, max: 1e6 }), ok: fc.boolean() }), { minLength: 1, maxLength: 30 }), (runs) => {
        const dag = dagWith({ since: "lastRun" });
        let lastGood = null as ReturnType<typeof resolveWindows>;
        let t = T;
        const covered: [number, number][] = [];
        for (const r of runs) {
          t += r.gap;
          const w = resolveWindows(dag, t, lastGood)!;
          if (r.ok) {
            covered.push([w["a.files"]!.from, w["a.files"]!.to]);
            lastGood = w;
          }
        }
        // The successful runs' windows tile [0, the last one's end).
        for (let i = 1; i < covered.length; i++) expect(covered[i]![0]).toBe(covered[i - 1]![1]);
        if (covered.length) expect(covered[0]![0]).toBe(0);
      }),
    );
  });

  it("refuses unknown forms and negative or unitless durations, naming the field", () => {
    const problems = (window: unknown) => {
      const r = validateDag({ name: "d", nodes: [{ id: "a", project: { uri: "x" }, inputs: { files: { uri: "incoming/", window } } }] });
      return r.ok ? [] : r.problems.map((p) => `${p.path}: ${p.message}`);
    };
    expect(problems({ since: "yesterday" })).toEqual(['nodes[0].inputs.files.window.since: expected "lastRun"']);
    expect(problems({ last: "-5m" })).toEqual(['nodes[0].inputs.files.window.last: expected a positive duration such as "30s", "15m", "2h" or "1d"']);
    expect(problems({ last: "5" })).toEqual(['nodes[0].inputs.files.window.last: expected a positive duration such as "30s", "15m", "2h" or "1d"']);
    expect(problems({ every: "5m" })).toEqual([expect.stringMatching(/^nodes\[0\]\.inputs\.files\.window/)]);
  });
});

describe("where a window may be", () => {
  it("on local paths and {experiment} inputs; elsewhere refused naming why (one run ends once, one file, an unread scheme)", () => {
    const problems = (inputs: unknown) => {
      const r = validateDag({
        name: "d",
        nodes: [
          { id: "up", project: { uri: "x" } },
          { id: "a", project: { uri: "x" }, inputs },
        ],
      });
      return r.ok ? [] : r.problems.map((p) => `${p.path}: ${p.message}`);
    };
    const w = { since: "lastRun" };
    expect(problems({ f: { uri: "incoming/", window: w }, g: { uri: "file:///data/in/", window: w }, h: { uri: "/abs/in", window: w } })).toEqual([]);
    expect(problems({ f: { experiment: "ingest", window: w }, g: { experiment: "7", path: "batch", window: { last: "15m" } } })).toEqual([]);
    expect(problems({ f: { node: "up", window: w } })).toEqual([
      expect.stringMatching(/^nodes\[1\]\.inputs\.f\.window: a window is not supported on a \{node\} input: it is the upstream node's result in this same DAG run/),
    ]);
    expect(problems({ f: { run: "r1", window: w } })).toEqual([
      expect.stringMatching(/^nodes\[1\]\.inputs\.f\.window: a window is not supported on a \{run\} input: one MLflow run ends once.*use \{experiment/),
    ]);
    expect(problems({ f: { uri: "runs:/r1/x", window: w } })).toEqual([
      expect.stringMatching(/^nodes\[1\]\.inputs\.f\.window: a window is not supported on a runs:\/ input: one MLflow run ends once/),
    ]);
    expect(problems({ f: { uri: "https://e.com/a", window: w } })).toEqual([expect.stringMatching(/^nodes\[1\]\.inputs\.f\.window: a window is not supported on an http\(s\) input/)]);
    expect(problems({ f: { uri: "s3://bucket/in/", window: w } })).toEqual([
      expect.stringMatching(/^nodes\[1\]\.inputs\.f\.window: a window is not supported on a s3:\/\/ input: no executor here lists s3:\/\/ objects yet/),
    ]);
    expect(problems({ f: { uri: "GS://bucket/in/", window: w } })).toEqual([expect.stringMatching(/^nodes\[1\]\.inputs\.f\.window: a window is not supported on a gs:\/\/ input/)]);
    expect(problems({ f: { node: "up" } })).toEqual([]);
  });

  it("an {experiment} input is checked field by field", () => {
    const problems = (ref: unknown) => {
      const r = validateDag({ name: "d", nodes: [{ id: "a", project: { uri: "x" }, inputs: { f: ref } }] });
      return r.ok ? [] : r.problems.map((p) => `${p.path}: ${p.message}`);
    };
    expect(problems({ experiment: "" })).toEqual(["nodes[0].inputs.f.experiment: must not be empty"]);
    expect(problems({ experiment: "ingest", window: { last: "soon" } })).toEqual(['nodes[0].inputs.f.window.last: expected a positive duration such as "30s", "15m", "2h" or "1d"']);
    expect(problems({ experiment: "ingest", paht: "x" })).toEqual([expect.stringMatching(/^nodes\[0\]\.inputs\.f/)]);
  });
});
