/**
 * The OpenAPI document is true: schemathesis (`st run --checks all`, from PyPI, in the project's
 * venv) reads /v1/openapi.json from the real control plane under `wrangler dev` (workerd, a local
 * D1 with the real migrations) and sends it requests generated from the document: valid ones,
 * which must be accepted and answered with a documented status and a body of the documented
 * schema; invalid ones, which must be refused; methods a path does not have (405 with `Allow`);
 * requests without credentials (401); and sequences (create, then get, delete, get again).
 *
 * No NATS here: the API surface does not need it. Runs are written to the outbox, which a NATS
 * publisher would drain; only agent registration needs NATS (503 without it). The agent endpoints
 * (`/v1/agent/*`) are left out: they take an agent's credential from a registration, and their
 * contract is tested by test/workers/agent.test.ts and the end-to-end tests.
 *
 * What schemathesis is told beyond the document (422 for DAGs and runs, 400 for cron and time
 * zone, the DAG schema's coverage walked once) is in schemathesis.toml beside this file, with why.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, startControlPlane, type ControlPlane } from "../../scripts/local/control-plane";
import { MLFLOW_START_TIMEOUT_MS } from "../../scripts/local/mlflow-server";
import { ensurePythonTools } from "../../scripts/local/python-tools";

const CONFIG = join(ROOT, "test/node/schemathesis.toml");
const TOKEN = `pl_schemathesis_${randomBytes(18).toString("base64url")}`;
const EXCLUDED = "^/v1/agent/";

let control: ControlPlane;
let bin: string;
let state: string;

beforeAll(async () => {
  state = mkdtempSync(join(tmpdir(), "parallels-schemathesis-"));
  [bin, control] = await Promise.all([ensurePythonTools(), startControlPlane({ stateDir: join(state, "control"), vars: { PARALLELS_ADMIN_TOKEN: TOKEN } })]);
}, MLFLOW_START_TIMEOUT_MS);

afterAll(async () => {
  await control?.stop();
  if (state) rmSync(state, { recursive: true, force: true });
});

/** Runs `st`, resolving with its exit code and output whatever the code. */
function st(args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((ok) => {
    execFile(
      join(bin, "st"),
      args,
      // The token reaches schemathesis through the environment (the config file names it), not
      // the command line, which every user of the machine can read in `ps`.
      { cwd: state, env: { ...process.env, PARALLELS_API_TOKEN: TOKEN, NO_COLOR: "1" }, maxBuffer: 64 * 1024 * 1024, timeout: 600_000 },
      (err, stdout, stderr) => ok({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` }),
    );
  });
}

describe("the OpenAPI document against the running control plane (schemathesis)", () => {
  it("finds no failure: every answer has a documented status, Content-Type and schema", { timeout: 600_000 }, async () => {
    const doc = (await (await fetch(`${control.url}/v1/openapi.json`)).json()) as { paths: Record<string, object> };
    // Every operation is tested, but those excluded and the document's own (schemathesis leaves out
    // the operation that serves the document it reads).
    const operations = Object.entries(doc.paths)
      .filter(([path]) => !new RegExp(EXCLUDED).test(path) && path !== "/v1/openapi.json")
      .reduce((n, [, methods]) => n + Object.keys(methods).length, 0);

    const started = Date.now();
    const { code, output } = await st([
      "--config-file",
      CONFIG,
      "run",
      `${control.url}/v1/openapi.json`,
      "--checks",
      "all",
      "--exclude-path-regex",
      EXCLUDED,
      // Bounded: about a minute on 2 cores. The coverage phase's boundary cases come on top.
      "--max-examples",
      "5",
      "--workers",
      "2",
      "--generation-database",
      "none",
      "--no-color",
    ]);
    const seconds = ((Date.now() - started) / 1000).toFixed(0);
    // The failures (if any) and the summary, as schemathesis prints them.
    const from = output.search(/^=+ (FAILURES|ERRORS|WARNINGS|SUMMARY) =+$/m);
    console.log(`schemathesis (${seconds} s):\n${from >= 0 ? output.slice(from) : output}`);

    expect(code, output.slice(-6000)).toBe(0);
    expect(output).toMatch(new RegExp(`Tested: ${operations}\\b`));
    const counts = /(\d+) generated, (\d+) passed/.exec(output);
    expect(counts, "the summary's count of test cases").not.toBeNull();
    expect(Number(counts![2])).toBe(Number(counts![1]));
  });
});
