import fc from "fast-check";
import { stringify } from "yaml";
import { describe, expect, it } from "vitest";
import { parseDagText } from "./index";
import { acyclicDagArb } from "./testing";

const yamlDoc = `# nightly image pipeline
name: images
failurePolicy: continue
params:
  threshold: 0.5
nodes:
  - id: prep
    project: {uri: "https://github.com/example/prep.git", version: main}
    parallelism: 10
    inputs:
      images: {uri: "s3://bucket/images/"}
    partition: {by: object, input: images}
  - id: infer
    project:
      uri: https://github.com/example/infer.git
    cluster: {gpu: "true"}
    inputs:
      data: {node: prep, path: out}
`;

describe("parseDagText", () => {
  it("accepts YAML and JSON with the same result", () => {
    const fromYaml = parseDagText(yamlDoc, "yaml");
    expect(fromYaml.ok).toBe(true);
    if (!fromYaml.ok) return;
    const fromJson = parseDagText(JSON.stringify(fromYaml.dag), "json");
    expect(fromJson).toEqual(fromYaml);
    expect(fromYaml.dag.nodes[1]?.cluster).toEqual({ gpu: "true" });
  });

  it("gives the same problems for the same document in either syntax", () => {
    const doc = { name: "x", nodes: [{ id: "a", project: { uri: "." }, paralelism: 2, after: ["zz"] }] };
    const a = parseDagText(JSON.stringify(doc, null, 2), "json");
    const b = parseDagText(stringify(doc), "yaml");
    expect(a.ok).toBe(false);
    expect(b).toEqual(a);
  });

  it("has YAML/JSON parity on generated DAGs", () => {
    fc.assert(
      fc.property(acyclicDagArb({ maxNodes: 30 }), ({ doc }) => {
        expect(parseDagText(stringify(doc), "yaml")).toEqual(parseDagText(JSON.stringify(doc), "json"));
      }),
      { numRuns: 50 },
    );
  });

  it("reports JSON syntax errors with line and column", () => {
    const r = parseDagText('{\n  "name": "x",\n  "nodes": [,]\n}', "json");
    expect(r).toEqual({ ok: false, problems: [{ path: "", message: expect.stringMatching(/^invalid JSON at line 3, column 13: /) }] });
    const end = parseDagText('{"name": "x"', "json");
    expect(end.ok ? "" : end.problems[0]?.message).toMatch(/^invalid JSON at line 1, column 13: /);
  });

  it.each([
    ['{"a": 1,}', 1, 9, "expected a property name in double quotes"],
    ["[1, 2", 1, 6, "unexpected end of input"],
    ['{"a" 1}', 1, 6, 'expected ":" after the property name'],
    ['{"a": "x\\q"}', 1, 9, "invalid escape in a string"],
    ['{"a": [1 2]}', 1, 10, 'expected "," or "]"'],
    ['{"a": tru}', 1, 7, "expected a value"],
    ["{}\n  x", 2, 3, "unexpected text after the document"],
    ['{"a": "b', 1, 9, "unexpected end of input"],
  ])("locates JSON error in %j at line %i, column %i", (text, line, column, reason) => {
    expect(parseDagText(text, "json")).toEqual({
      ok: false,
      problems: [{ path: "", message: `invalid JSON at line ${line}, column ${column}: ${reason}` }],
    });
  });

  it("reports YAML syntax errors with line and column", () => {
    const r = parseDagText("name: x\nnodes:\n  - id: a\n    project: {uri: .\n", "yaml");
    expect(r.ok ? "" : r.problems[0]?.message).toMatch(/^invalid YAML at line \d+, column \d+: /);
    const dup = parseDagText("name: x\nname: y\nnodes: []\n", "yaml");
    expect(dup).toEqual({ ok: false, problems: [{ path: "", message: "invalid YAML at line 2, column 1: Map keys must be unique" }] });
  });

  it("validates an empty document as a missing object", () => {
    expect(parseDagText("", "yaml")).toEqual({ ok: false, problems: [{ path: "", message: "expected an object, got null" }] });
  });

  it("bounds YAML alias expansion", () => {
    const bomb = [
      "a: &a [x, x, x, x, x, x, x, x, x, x]",
      "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]",
      "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]",
      "d: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]",
    ].join("\n");
    const r = parseDagText(bomb, "yaml");
    expect(r.ok ? "" : r.problems[0]?.message).toMatch(/^invalid YAML: .*alias/i);
  });
});
