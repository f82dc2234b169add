// Property: whatever string a parameter holds, the rendered command, split by a real POSIX
// shell, hands the program exactly that string (declared params and appended extras alike).
import { spawnSync } from "node:child_process";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { computeCommand, filesFromMap, getEntryPoint, loadProject, shlexQuote } from "./index.js";

// printf-based argv dumper: every argument followed by a NUL byte.
const MLPROJECT = `entry_points:
  main:
    parameters:
      v: string
    command: |-
      printf '%s\\0' {v}
`;

function argvOf(command: string): string[] {
  const r = spawnSync("/bin/sh", ["-c", command], { encoding: "buffer" });
  if (r.status !== 0) throw new Error(`sh failed (${r.status}): ${r.stderr.toString()}`);
  const parts = r.stdout.toString("utf8").split("\0");
  parts.pop(); // the text after the last NUL is empty
  return parts;
}

// argv cannot carry NUL bytes, so values are any Unicode strings without U+0000.
const value = fc.string({ unit: "binary", maxLength: 40 }).filter((s) => !s.includes("\0"));
const tricky = fc.constantFrom("", "'", "''", '"', "\\", "$HOME", "`id`", "a b", "~", "*", "\n", "-n", "--", "%s", "é", "'\"'\"'");
const anyValue = fc.oneof(
  value,
  tricky,
  fc.array(tricky).map((a) => a.join("")),
);

describe("rendered commands survive a POSIX shell unchanged", async () => {
  const project = await loadProject(filesFromMap({ MLproject: MLPROJECT }));
  const ep = getEntryPoint(project, "main")!;

  it("declared parameter values", () => {
    fc.assert(
      fc.property(anyValue, (v) => {
        expect(argvOf(computeCommand(ep, { v }))).toEqual([v]);
      }),
      { numRuns: 200 },
    );
  });

  it("extra parameters appended as --key value", () => {
    fc.assert(
      fc.property(anyValue, anyValue, (v, extra) => {
        expect(argvOf(computeCommand(ep, { v, extra }))).toEqual([v, "--extra", extra]);
      }),
      { numRuns: 150 },
    );
  });

  it("shlexQuote alone round-trips through sh", () => {
    fc.assert(
      fc.property(fc.array(anyValue, { maxLength: 4 }), (values) => {
        const cmd = `printf '%s\\0' ${values.map(shlexQuote).join(" ")}`;
        expect(argvOf(values.length ? cmd : "true")).toEqual(values);
      }),
      { numRuns: 100 },
    );
  });
});
