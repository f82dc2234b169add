import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isSidecar, parseSidecar, sidecarPath, storedSidecarName, underInputRoot } from "./metadata";
import { checkOutputsMetadata } from "./metadata-store";

const outputs = new Set(["img-001.png", "sub/img-002.png"]);

describe("parseSidecar", () => {
  it("takes one {path, metadata} per line; blank lines skipped, ./ dropped, a later line for a path wins", () => {
    const text = '{"path": "img-001.png", "metadata": {"label": "cat", "n": 3, "ok": true}}\n\n{"path": "./sub/img-002.png", "metadata": {}}\n{"path": "img-001.png", "metadata": {"label": "dog"}}\n';
    const r = parseSidecar(".metadata/0.jsonl", text, outputs);
    expect(r).toEqual({
      ok: true,
      entries: new Map([
        ["img-001.png", { label: "dog" }],
        ["sub/img-002.png", {}],
      ]),
    });
  });

  it("refuses naming the sidecar, the line and the field", () => {
    const bad = (text: string) => {
      const r = parseSidecar(".metadata/3.jsonl", text, outputs);
      if (r.ok) throw new Error("expected a problem");
      return r.problem;
    };
    expect(bad('{"path": "img-001.png", "metadata": {}}\nnot json')).toMatch(/^\.metadata\/3\.jsonl line 2: not JSON \(/);
    expect(bad('{"path": "img-001.png"}')).toBe(".metadata/3.jsonl line 1: metadata: expected an object of field → string, number or boolean");
    expect(bad('{"path": "img-001.png", "metadata": {"label": [1]}}')).toBe(".metadata/3.jsonl line 1: metadata.label: expected a string, number or boolean");
    expect(bad('{"path": 5, "metadata": {}}')).toBe(".metadata/3.jsonl line 1: path: expected the output's path as a string");
    expect(bad('{"path": "img-001.png", "metadata": {}, "extra": 1}')).toBe('.metadata/3.jsonl line 1: line: unknown field(s) "extra" (expected {"path", "metadata"})');
    expect(bad('{"path": "nope.png", "metadata": {"a": 1}}')).toBe('.metadata/3.jsonl line 1: path: "nope.png" is not among the step\'s outputs');
    expect(bad("[1]")).toBe('.metadata/3.jsonl line 1: line: expected an object {"path": "<output>", "metadata": {…}}');
  });
});

describe("sidecar names and roots", () => {
  it("one sidecar per partition, the step's otherwise; sidecars are not outputs", () => {
    expect(sidecarPath(undefined)).toBe(".metadata.jsonl");
    expect(sidecarPath(7)).toBe(".metadata/7.jsonl");
    expect([".metadata.jsonl", ".metadata/7.jsonl", ".metadata/x/y", "a/.metadata.jsonl", "img.png"].map(isSidecar)).toEqual([true, true, true, false, false]);
    expect([".metadata.jsonl", ".metadata/7.jsonl", ".metadata/x/y.jsonl", ".metadata/7.json"].map(storedSidecarName)).toEqual(["step.jsonl", "7.jsonl", undefined, undefined]);
  });

  it("re-roots output paths to an input's `path`", () => {
    expect(underInputRoot("sub/a.png", "")).toBe("sub/a.png");
    expect(underInputRoot("sub/a.png", "sub")).toBe("a.png");
    expect(underInputRoot("subway/a.png", "sub")).toBeUndefined();
    expect(underInputRoot("sub/a.png", "sub/a.png")).toBe("a.png");
  });
});

describe("checkOutputsMetadata", () => {
  it("checks every sidecar of an outputs folder against the files there", async () => {
    const dir = mkdtempSync(join(tmpdir(), "metadata-"));
    mkdirSync(join(dir, ".metadata"));
    writeFileSync(join(dir, "a.png"), "a");
    writeFileSync(join(dir, ".metadata.jsonl"), '{"path": "a.png", "metadata": {"k": "v"}}\n');
    writeFileSync(join(dir, ".metadata", "0.jsonl"), '{"path": "a.png", "metadata": {"k": 1}}\n');
    writeFileSync(join(dir, ".metadata", "1.jsonl"), '{"path": ".metadata/0.jsonl", "metadata": {}}\n');
    writeFileSync(join(dir, ".metadata", "notes.txt"), "x");
    const r = await checkOutputsMetadata(dir);
    expect([...r.stored]).toEqual([
      ["step.jsonl", '{"path":"a.png","metadata":{"k":"v"}}\n'],
      ["0.jsonl", '{"path":"a.png","metadata":{"k":1}}\n'],
    ]);
    expect(r.problems).toEqual([
      '.metadata/1.jsonl line 1: path: ".metadata/0.jsonl" is not among the step\'s outputs',
      ".metadata/notes.txt: not a metadata sidecar (expected .metadata.jsonl or .metadata/<partition index>.jsonl)",
    ]);
  });
});
