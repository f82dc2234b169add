// The conformance runner's evaluation (test/support/mlproject-cases) evaluates the expectation keys
// the 85 MLflow cases do not use — load_project's entry_point and env_config_path, logged_params'
// tags_subset, command's project keys when the command fails — and MLflow error texts: each case
// of test/fixtures/mlproject-runner-cases.json passes, and each wrong expectation fails the case.
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { type Case, readCases } from "../support/mlproject-cases/case.js";
import { evaluateCase } from "../support/mlproject-cases/evaluate.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const cases = readCases(resolve(repoRoot, "test/fixtures/mlproject-runner-cases.json"));

function theCase(id: string): Case {
  const c = cases.find((x) => x.id === id);
  if (!c) throw new Error(`no case ${id} in mlproject-runner-cases.json`);
  return structuredClone(c);
}

/** The case with some expectations replaced (or added). */
function withExpect(id: string, patch: Record<string, unknown>): Case {
  const c = theCase(id);
  c.expect = { ...c.expect, ...structuredClone(patch) };
  return c;
}

/** The assertion a case fails with (its `expected`/`actual` show what was compared). */
async function failure(c: Case): Promise<Error & { expected?: unknown; actual?: unknown }> {
  try {
    await evaluateCase(c);
  } catch (e) {
    return e as Error;
  }
  throw new Error(`case ${c.id} passed`);
}

describe("the runner's own cases hold", () => {
  it.each(cases.map((c) => [c.id, c] as const))("%s", async (_id, c) => {
    await evaluateCase(c);
  });
});

describe("a wrong expectation fails the case", () => {
  const load = "runner-load-entry-point-details";
  const entryPoint = theCase(load).expect.entry_point as { parameters: Record<string, { type: string; default: unknown }> };

  it("load_project entry_point: an int default is not the float 10.0", async () => {
    const wrong = { ...entryPoint, parameters: { ...entryPoint.parameters, epochs: { type: "int", default: 10.0 } } };
    const e = await failure(withExpect(load, { entry_point: wrong }));
    expect(e.expected).toEqual(wrong);
    expect(e.actual).toMatchObject({ parameters: { epochs: { default: 10n } } });
  });

  it("load_project entry_point: the case's entry_point field picks the entry point", async () => {
    const c = theCase(load);
    c.entry_point = "main";
    expect((await failure(c)).actual).toMatchObject({ name: "main", command: "echo main" });
  });

  it("load_project env_config_path", async () => {
    const e = await failure(withExpect(load, { env_config_path: "${PROJECT_DIR}/python_env.yaml" }));
    expect(e.expected).toMatch(/\/project\/python_env\.yaml$/);
    expect(e.actual).toMatch(/\/project\/envs\/python_env\.yaml$/);
  });

  it("logged_params tags_subset: a wrong value", async () => {
    const c = theCase("runner-logged-params-and-tags");
    (c.expect.tags_subset as Record<string, string>)["mlflow.project.backend"] = "kubernetes";
    const e = await failure(c);
    expect(e.expected).toMatchObject({ "mlflow.project.backend": "kubernetes" });
    expect(e.actual).toMatchObject({ "mlflow.project.backend": "local", "mlflow.source.type": "PROJECT" });
  });

  it("logged_params tags_subset: a tag the run does not carry", async () => {
    const c = theCase("runner-logged-params-and-tags");
    // The local executor runs in the current environment: MLflow sets no mlflow.project.env then.
    (c.expect.tags_subset as Record<string, string>)["mlflow.project.env"] = "virtualenv";
    const e = await failure(c);
    expect(e.expected).toMatchObject({ "mlflow.project.env": "virtualenv" });
    expect(e.actual).not.toHaveProperty(["mlflow.project.env"]);
  });

  it("command: project keys are evaluated when the command fails", async () => {
    const env = await failure(withExpect("runner-command-error-with-project-keys", { env_type: "conda_env" }));
    expect([env.expected, env.actual]).toEqual(["conda_env", "python_env"]);
    const types = await failure(withExpect("runner-command-error-with-project-keys", { parameter_types: { name: "path" } }));
    expect([types.expected, types.actual]).toEqual(["path", "string"]);
  });

  it("a key the runner does not know for the kind", async () => {
    await expect(evaluateCase(withExpect(load, { tags_subset: {} }))).rejects.toThrow(/not evaluated for kind load_project/);
  });

  it("a key whose project did not load", async () => {
    const c = withExpect("runner-command-error-with-project-keys", {});
    c.mlproject = "a: b: c\n"; // not YAML: the project never loads, so env_type cannot be evaluated
    c.expect = { error: "invalid YAML in MLproject", env_type: "python_env" };
    await expect(evaluateCase(c)).rejects.toThrow(/not evaluated for kind command/);
  });

  it("an unknown kind, and a case expecting nothing", async () => {
    await expect(evaluateCase({ ...theCase(load), kind: "k8s_job" })).rejects.toThrow(/kind 'k8s_job' is not evaluated/);
    await expect(evaluateCase({ ...theCase(load), expect: {} })).rejects.toThrow(/expects nothing/);
  });
});

describe("errors are compared with MLflow's text", () => {
  const unknownKey = (error: string): Case => ({
    id: "penv-unknown-key",
    kind: "python_env",
    mlproject: null,
    entry_point: null,
    parameters: {},
    env_file: "python: '3.10'\nfoo: 1\n",
    expect: { error, error_type: "TypeError" },
  });

  it("MLflow's text passes (the engine's message words it differently)", async () => {
    await evaluateCase(unknownKey("_PythonEnv.__init__() got an unexpected keyword argument 'foo'"));
  });

  it("the engine's own wording is not MLflow's", async () => {
    const e = await failure(unknownKey("unknown key 'foo'"));
    expect(e.actual).toBe("_PythonEnv.__init__() got an unexpected keyword argument 'foo'");
  });

  it("without MLflow's text the engine's message stands in", async () => {
    const c = theCase("runner-command-error-with-project-keys");
    c.mlproject = "a: b: c\n";
    c.expect = { error: "invalid YAML in MLproject", error_type: "yaml.YAMLError" };
    await evaluateCase(c);
  });
});
