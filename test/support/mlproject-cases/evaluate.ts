/**
 * @module
 * Evaluates one conformance case against proto/mlproject: every kind this project implements and
 * every expectation key test/fixtures/mlflow/README.md documents for it. A case fails on a kind or
 * key it cannot evaluate.
 */
import { expect } from "vitest";
import {
  type ComputedParameters,
  computeCommand,
  computeParameters,
  condaToPythonEnv,
  type EntryPoint,
  getEntryPoint,
  isMLprojectError,
  loadProject,
  loggedParams,
  mlflowText,
  parseParamFlags,
  parsePythonEnv,
  type Project,
  type PyValue,
  resolveCommand,
  resolveParameters,
} from "../../../proto/mlproject/index.js";
// The agent reads projects, and tags their runs, with these: the cases check what it does.
import { localProjectRunTags } from "../../../agent/src/executor/shared/mlflow-runs.js";
import { fetchProject, fsProjectFiles } from "../../../agent/src/executor/shared/project.js";
import { type Case, LAUNCHER_PYTHON, resolver, type Sandbox, sandbox } from "./case.js";
import { caseJson, Expectations, expectError } from "./expectations.js";

export const KINDS: ReadonlySet<string> = new Set(["command", "load_project", "python_env", "conda_to_python_env", "compute_parameters", "logged_params", "cli_parse"]);

function userParams(c: Case, sb: Sandbox): Map<string, PyValue> {
  const given = new Map(Object.entries(sb.subst(c.parameters)));
  if (c.cli_args) {
    // The CLI arguments must parse to exactly the case's parameters; use the parsed ones.
    const parsed = parseParamFlags(c.cli_args);
    expect(Object.fromEntries(parsed)).toEqual(Object.fromEntries(given));
    return parsed;
  }
  return given;
}

const envOf = (c: Case): Record<string, string | undefined> => Object.fromEntries(Object.entries(c.env ?? {}).map(([k, v]) => [k, v ?? undefined]));

const load = (sb: Sandbox): Promise<Project> => loadProject(fsProjectFiles(sb.projectDir), { projectDir: sb.projectDir });

const entryPoint = (c: Case, project: Project): EntryPoint => getEntryPoint(project, c.entry_point ?? "main", { env: envOf(c) })!;

/** The project-level keys (`load_project`'s, also checked by `command`). */
function checkProject(x: Expectations, project: Project) {
  if (x.has("name")) expect(project.name).toBe(x.get("name"));
  if (x.has("env_type")) expect(project.envType).toBe(x.get("env_type"));
  if (x.has("env_config_path")) expect(project.envConfigPath).toBe(x.get("env_config_path"));
  if (x.has("docker_env")) expect(caseJson(project.dockerEnv?.raw ?? null)).toEqual(x.get("docker_env"));
  if (x.has("entry_points")) {
    expect([...project.entryPoints.keys()]).toEqual(Object.keys(x.get("entry_points") as object));
  }
}

/** `get_entry_point(...)` as the cases write it: name, command, parameters with type and default. */
function entryPointDetails(ep: EntryPoint) {
  return {
    name: ep.name,
    command: caseJson(ep.command),
    parameters: Object.fromEntries(ep.parameters.map((p) => [p.name, { type: p.type, default: caseJson(p.default) }])),
  };
}

/** `compute_parameters(params, storage_dir)`: path params resolved only with a storage dir. */
async function computed(c: Case, sb: Sandbox, ep: EntryPoint): Promise<ComputedParameters> {
  const user = userParams(c, sb);
  return c.storage_dir != null ? resolveParameters(ep, user, resolver(sb)) : computeParameters(ep, user);
}

function checkComputed(x: Expectations, got: ComputedParameters) {
  if (x.has("params")) expect(Object.fromEntries(got.params)).toEqual(x.get("params"));
  if (x.has("extra_params")) expect(Object.fromEntries(got.extraParams)).toEqual(x.get("extra_params"));
}

/** The tags the agent's local executor gives the run of this project and entry point. */
async function runTags(c: Case, sb: Sandbox): Promise<Record<string, string>> {
  const fetched = await fetchProject({ uri: sb.projectDir }, { projectsRoot: sb.root, gitCacheDir: `${sb.root}/git-cache` });
  return localProjectRunTags({ ...fetched, entryPoint: c.entry_point ?? "main" });
}

type Evaluator = (c: Case, sb: Sandbox, x: Expectations) => Promise<void>;

const evaluators: Record<string, Evaluator> = {
  async command(c, sb, x) {
    let project: Project | undefined;
    let ep: EntryPoint | undefined;
    const run = async () => {
      project = await load(sb);
      ep = entryPoint(c, project);
      const user = userParams(c, sb);
      return c.storage_dir != null ? resolveCommand(ep, user, resolver(sb)) : computeCommand(ep, user);
    };
    if (x.has("error")) await expectError(x, run);
    else expect(await run()).toBe(x.get("command"));
    // Also when the command failed: the keys about the project and entry point need only those
    // to have loaded (a key whose object did not load stays unevaluated and fails the case).
    if (project) checkProject(x, project);
    if (ep && x.has("parameter_types")) {
      const want = x.get("parameter_types") as Record<string, string>;
      for (const [name, type] of Object.entries(want)) {
        expect(ep.parameters.find((p) => p.name === name)?.type, name).toBe(type);
      }
    }
    if (ep && (x.has("params") || x.has("extra_params"))) checkComputed(x, await computed(c, sb, ep));
  },
  async compute_parameters(c, sb, x) {
    const run = async () => computed(c, sb, entryPoint(c, await load(sb)));
    if (x.has("error")) {
      await expectError(x, run);
      return;
    }
    const got = await run();
    // The pair is this kind's result: both are expected.
    expect(Object.fromEntries(got.params)).toEqual(x.get("params"));
    expect(Object.fromEntries(got.extraParams)).toEqual(x.get("extra_params"));
  },
  async load_project(c, sb, x) {
    if (x.has("error")) {
      await expectError(x, () => load(sb));
      return;
    }
    const project = await load(sb);
    checkProject(x, project);
    if (x.has("entry_point")) expect(entryPointDetails(entryPoint(c, project))).toEqual(x.get("entry_point"));
    if (x.has("get_entry_point_main_error")) {
      const want = x.get("get_entry_point_main_error");
      let err: unknown;
      try {
        getEntryPoint(project, "main");
      } catch (e) {
        err = e;
      }
      if (!isMLprojectError(err)) throw err ?? new Error("get_entry_point('main') did not fail");
      expect(mlflowText(err)).toBe(want);
    }
  },
  async logged_params(c, sb, x) {
    const run = async () => loggedParams(entryPoint(c, await load(sb)), userParams(c, sb));
    if (x.has("error")) {
      await expectError(x, run);
      return;
    }
    const logged = await run();
    if (x.has("logged_params")) expect(Object.fromEntries(logged)).toEqual(x.get("logged_params"));
    // Tags the run must carry with these values; it may carry others.
    if (x.has("tags_subset")) expect(await runTags(c, sb)).toMatchObject(x.get("tags_subset") as object);
  },
  async cli_parse(c, _sb, x) {
    const run = () => parseParamFlags(c.cli_args ?? []);
    if (x.has("error")) {
      await expectError(x, run);
      return;
    }
    expect(Object.fromEntries(run())).toEqual(x.get("parameters"));
  },
  async python_env(c, _sb, x) {
    const run = () => parsePythonEnv(c.env_file ?? "", { launcherPythonVersion: LAUNCHER_PYTHON });
    if (x.has("error")) {
      await expectError(x, run);
      return;
    }
    const env = run();
    expect(env.python).toBe(x.get("python"));
    expect(env.buildDependencies).toEqual(x.get("build_dependencies"));
    expect(env.dependencies).toEqual(x.get("dependencies"));
  },
  async conda_to_python_env(c, _sb, x) {
    const run = () => condaToPythonEnv(c.env_file ?? "", { launcherPythonVersion: LAUNCHER_PYTHON });
    if (x.has("error")) {
      await expectError(x, run);
      return;
    }
    const env = run();
    expect(env.python).toBe(x.get("python"));
    expect(env.buildDependencies).toEqual(x.get("build_dependencies"));
    expect(env.dependencies).toEqual(x.get("dependencies"));
    if (x.has("warning_unmatched")) expect(env.unmatched).toEqual(x.get("warning_unmatched"));
  },
};

/** Evaluate one case in a fresh sandbox; throws (an assertion error) when it does not hold. */
export async function evaluateCase(c: Case): Promise<void> {
  const evaluate = KINDS.has(c.kind) ? evaluators[c.kind] : undefined;
  // A kind outside this project's list is a failure, never skipped silently.
  if (!evaluate) throw new Error(`case ${c.id}: kind '${c.kind}' is not evaluated by this runner`);
  const sb = sandbox(c);
  try {
    const x = new Expectations(c, sb);
    await evaluate(c, sb, x);
    x.done();
  } finally {
    sb.remove();
  }
}
