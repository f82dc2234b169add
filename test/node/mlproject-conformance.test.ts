// Conformance runner: evaluates every case of MLflow's behaviour recorded in
// test/fixtures/mlflow/mlproject-cases.json (MLPROJECT_CASES overrides the path; the format is in
// test/fixtures/mlflow/README.md) against proto/mlproject, one test per case. The evaluation
// itself is test/support/mlproject-cases (tested by mlproject-case-runner.test.ts).
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { readCases } from "../support/mlproject-cases/case.js";
import { evaluateCase } from "../support/mlproject-cases/evaluate.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const casesPath = resolve(repoRoot, process.env.MLPROJECT_CASES ?? "test/fixtures/mlflow/mlproject-cases.json");
const cases = readCases(casesPath);

let passed = 0;
let failed = 0;

describe(`MLproject conformance (${casesPath})`, () => {
  it("the cases file is a non-empty array with unique ids", () => {
    expect(Array.isArray(cases) && cases.length > 0).toBe(true);
    expect(new Set(cases.map((c) => c.id)).size).toBe(cases.length);
  });

  for (const c of cases) {
    it(c.id, async () => {
      try {
        await evaluateCase(c);
        passed++;
      } catch (e) {
        failed++;
        throw e;
      }
    });
  }

  afterAll(() => {
    process.stdout.write(`${passed} passed, ${failed} failed\n`);
  });
});
