// YAML 1.1 loading as PyYAML's safe_load: fixed examples, a differential check against the real
// PyYAML (the pinned one in the project's venv), and the property that arbitrary input never
// throws anything but the module's own error type.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { stringify } from "yaml";
import { describe, expect, it } from "vitest";
import { computeCommand, filesFromMap, getEntryPoint, isMLprojectError, loadProject, loadYaml, pyStr, type PyValue } from "./index.js";
import { pyTypeName } from "./pytypes.js";

const show = (v: PyValue) => `${pyTypeName(v)} ${pyStr(v)}`;

describe("PyYAML scalar resolution", () => {
  it.each([
    ["x: 1e-3", "dict {'x': '1e-3'}"],
    ["x: 1.0e-3", "dict {'x': 0.001}"],
    ["x: 1.0", "dict {'x': 1.0}"],
    ["x: 0.00001", "dict {'x': 1e-05}"],
    ["x: .5", "dict {'x': 0.5}"],
    ["x: 010", "dict {'x': 8}"],
    ["x: 1:30", "dict {'x': 90}"],
    ["x: 1_000", "dict {'x': 1000}"],
    ["x: yes", "dict {'x': True}"],
    ["x: off", "dict {'x': False}"],
    ["x: y", "dict {'x': 'y'}"],
    ["x: ~", "dict {'x': None}"],
    ["x:", "dict {'x': None}"],
    ["x: '0.10'", "dict {'x': '0.10'}"],
    ["x: +.5", "dict {'x': '+.5'}"],
    ["x: 1.5e3", "dict {'x': '1.5e3'}"],
    ["x: ! 12", "dict {'x': 12}"],
    ["{type str, default: auto}", "dict {'type str': None, 'default': 'auto'}"],
    ["{type:float, default: 1.0}", "dict {'type:float': None, 'default': 1.0}"],
    ["{a: 1, <<: [{a: 2, b: 3}, {c: 4}]}", "dict {'c': 4, 'a': 1, 'b': 3}"],
    ["{1: a, 1.0: b, true: c}", "dict {1: 'c'}"],
    ["2001-12-14t21:59:43.10-05:00", "datetime.datetime 2001-12-14 21:59:43.100000-05:00"],
    ["2021-01-01", "datetime.date 2021-01-01"],
    ["!!binary aGVsbG8=", "bytes b'hello'"],
    ["", "NoneType None"],
    ["# only a comment", "NoneType None"],
  ])("%j → %s", (text, want) => {
    expect(show(loadYaml(text))).toBe(want);
  });

  it.each([["="], ["x: <<"], ["!x 1"], ["x: 0b_"], ["2021-02-30"], ["a\n---\nb"], ["x: \u0007"], ["a: b: c"]])("%j is rejected with YamlError", (text) => {
    let err: unknown;
    try {
      loadYaml(text);
    } catch (e) {
      err = e;
    }
    expect(isMLprojectError(err)).toBe(true);
  });
});

// Random YAML: structured documents from the yaml package's stringify, with YAML-1.1-sensitive
// scalars, tags, anchors/aliases and merge keys mixed in as raw text.
const token = fc.constantFrom(
  "yes",
  "No",
  "on",
  "OFF",
  "~",
  "null",
  "010",
  "0x1F",
  "0b101",
  "1:30",
  "1_000",
  "1e-3",
  "1.0e-3",
  ".5",
  "-.inf",
  ".NaN",
  "2021-01-01",
  "2001-12-14 21:59:43.1Z",
  "<<",
  "=",
  "!!str 1",
  "!!int '7'",
  "!!float 1",
  "!!bool yes",
  "! 12",
  "!!binary aGk=",
  "&a x",
  "*a",
  "'q''t'",
  '"\\x41\\u00e9"',
  "[a, {b: c}]",
  "{? x}",
  "|\n  a\n  b",
  ">-\n  a\n  b",
  "|+\n  a\n",
  ">\n  a\n  b",
  "!!omap [a: 1]",
  "!foo x",
  "0.1",
  "-0.0",
  "1.",
  "café",
);
const scalarText = fc.oneof(token, fc.string({ maxLength: 12 }));
const rawDoc = fc
  .array(fc.tuple(fc.oneof(fc.constantFrom("a", "b", "<<", "="), fc.string({ maxLength: 6 })), scalarText), { maxLength: 6 })
  .map((pairs) => pairs.map(([k, v]) => `${k}: ${v}`).join("\n"));
const jsonish = fc.jsonValue({ maxDepth: 3 }).map((v) => stringify(v));
const anyYaml = fc.oneof(fc.string({ maxLength: 80 }), fc.string({ unit: "binary", maxLength: 40 }), rawDoc, jsonish);

function onlyOwnErrors(f: () => unknown): void {
  try {
    f();
  } catch (e) {
    if (!isMLprojectError(e)) throw e;
  }
}

describe("arbitrary YAML never throws anything but MLprojectError", () => {
  it("loadYaml", () => {
    fc.assert(
      fc.property(anyYaml, (text) => onlyOwnErrors(() => loadYaml(text))),
      { numRuns: 1500 },
    );
  });

  const mlproject = fc.oneof(
    anyYaml,
    fc.tuple(scalarText, scalarText, scalarText).map(([d, t, c]) => `entry_points:\n  main:\n    parameters:\n      p: {type: ${t}, default: ${d}}\n    command: ${c} {p}\n`),
  );
  it("load, look up and render a project", async () => {
    await fc.assert(
      fc.asyncProperty(mlproject, fc.string({ maxLength: 10 }), async (text, value) => {
        try {
          const project = await loadProject(filesFromMap({ MLproject: text, "conda.yaml": text }));
          const ep = getEntryPoint(project, "main");
          if (ep) computeCommand(ep, { p: value });
        } catch (e) {
          if (!isMLprojectError(e)) throw e;
        }
      }),
      { numRuns: 800 },
    );
  });
});

// Differential check against the real PyYAML: the one scripts/requirements.txt pins, in the venv
// scripts/python-env.sh makes (npm test makes it first). A missing venv fails the test: a skip
// would let CI pass without ever comparing.
const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const VENV_PYTHON = `${repoRoot}.state/venv/bin/python`;
const PINNED_PYYAML = /^PyYAML==(\S+)$/m.exec(readFileSync(`${repoRoot}scripts/requirements.txt`, "utf8"))?.[1];
const PY = `
import sys, json, yaml
out = []
for s in json.load(sys.stdin):
    try:
        v = yaml.safe_load(s); out.append(type(v).__name__ + " " + str(v))
    except Exception:
        out.append("ERR")
print(json.dumps({"version": yaml.__version__, "values": out}))
`;

describe("same values as PyYAML", () => {
  it("random scalars and small documents", () => {
    expect(existsSync(VENV_PYTHON), `${VENV_PYTHON} is missing: run \`bash scripts/python-env.sh\` first`).toBe(true);
    // Known, documented divergences are left out: tabs as token separators (PyYAML rejects them),
    // anchor names outside [A-Za-z0-9_-] and directive-only streams.
    const known = (d: string) => d.includes("\t") || /&(?![A-Za-z0-9_-]+ )/.test(d) || /^\s*%/.test(d);
    const samples = fc.sample(
      fc.oneof(scalarText, rawDoc).filter((d) => !known(d)),
      { numRuns: 800, seed: 42 },
    );
    const r = spawnSync(VENV_PYTHON, ["-c", PY], { input: JSON.stringify(samples), encoding: "utf8" });
    expect(r.status, `${VENV_PYTHON} failed (run \`bash scripts/python-env.sh\`): ${r.stderr}`).toBe(0);
    const { version, values: want } = JSON.parse(r.stdout) as { version: string; values: string[] };
    expect(version, "PyYAML in .state/venv is not the pinned one: run `bash scripts/python-env.sh`").toBe(PINNED_PYYAML);
    const mismatches: string[] = [];
    samples.forEach((s, i) => {
      let got: string;
      try {
        const v = loadYaml(s);
        got = show(v).replace(/^datetime\.(date|datetime) /, "$1 ");
      } catch {
        got = "ERR";
      }
      const w = want[i]!;
      // set() print order is hash order in CPython; compare sets only by type.
      if (got !== w && !(got.startsWith("set ") && w.startsWith("set "))) mismatches.push(`${JSON.stringify(s)}: py=${w} ts=${got}`);
    });
    expect(mismatches).toEqual([]);
  });
});
