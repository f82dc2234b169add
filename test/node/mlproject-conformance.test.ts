// Conformance runner: evaluates every case of MLflow's behaviour recorded in
// test/fixtures/mlflow/mlproject-cases.json (MLPROJECT_CASES overrides the path; the format is in
// test/fixtures/mlflow/README.md) against proto/mlproject, one test per case.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import {
  computeCommand,
  computeParameters,
  condaToPythonEnv,
  getEntryPoint,
  isMLprojectError,
  loadProject,
  loggedParams,
  mlflowText,
  type MLprojectError,
  parseParamFlags,
  parsePythonEnv,
  type PathResolver,
  type Project,
  type PyValue,
  resolveCommand,
  resolveParameters,
} from "../../proto/mlproject/index.js";
// The agent reads projects from disk the same way (one implementation for Node).
import { fsProjectFiles } from "../../agent/src/executor/local/project";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const casesPath = resolve(repoRoot, process.env.MLPROJECT_CASES ?? "test/fixtures/mlflow/mlproject-cases.json");
const LAUNCHER_PYTHON = "3.11.7";

const KINDS = new Set([
  "command",
  "load_project",
  "python_env",
  "conda_to_python_env",
  "compute_parameters",
  "logged_params",
  "cli_parse",
]);

interface Case {
  id: string;
  kind: string;
  mlproject: string | null;
  mlproject_filename?: string;
  files?: Record<string, string>;
  cwd_files?: Record<string, string>;
  entry_point: string | null;
  parameters: Record<string, PyValue>;
  cli_args?: string[];
  storage_dir?: string | null;
  env?: Record<string, string | null>;
  env_file?: string;
  expect: Record<string, unknown>;
}

// JSON ints are Python ints, JSON floats Python floats: keep the distinction (`3` vs `3.0`).
const cases: Case[] = JSON.parse(readFileSync(casesPath, "utf8"), function (this: unknown, _k, v, ctx?: { source?: string }) {
  return typeof v === "number" && ctx?.source !== undefined && /^-?\d+$/.test(ctx.source) ? BigInt(ctx.source) : v;
});


function writeTree(dir: string, files: Record<string, string> | undefined) {
  for (const [rel, text] of Object.entries(files ?? {})) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), text);
  }
}

interface Sandbox {
  projectDir: string;
  cwd: string;
  runStorageDir: string;
  subst<T>(v: T): T;
}

function sandbox(c: Case): Sandbox {
  const root = mkdtempSync(join(tmpdir(), `mlproject-${c.id.slice(0, 40)}-`));
  const projectDir = join(root, "project");
  const cwd = join(root, "cwd");
  const storage = join(root, "storage");
  for (const d of [projectDir, cwd, storage]) mkdirSync(d);
  if (c.mlproject !== null) writeFileSync(join(projectDir, c.mlproject_filename ?? "MLproject"), c.mlproject);
  writeTree(projectDir, c.files);
  writeTree(cwd, c.cwd_files);
  const runStorageDir = mkdtempSync(join(storage, "run-")); // tempfile.mkdtemp(dir=storage_dir)
  const subst = <T>(v: T): T => {
    if (typeof v === "string") {
      return v
        .replaceAll("${PROJECT_DIR}", projectDir)
        .replaceAll("${CWD}", cwd)
        .replaceAll("${RUN_STORAGE_DIR}", runStorageDir)
        .replaceAll("${LAUNCHER_PYTHON_VERSION}", LAUNCHER_PYTHON) as T;
    }
    if (Array.isArray(v)) return v.map(subst) as T;
    if (v && typeof v === "object" && v.constructor === Object) {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, subst(x)])) as T;
    }
    return v;
  };
  return { projectDir, cwd, runStorageDir, subst };
}

function resolver(sb: Sandbox): PathResolver {
  return {
    cwd: sb.cwd,
    runStorageDir: sb.runStorageDir,
    exists: (p) => existsSync(p),
    download: (uri, destDir) => {
      mkdirSync(destDir, { recursive: true }); // MLflow: os.mkdir(download_dir)
      return join(destDir, basename(new URL(uri).pathname)); // mocked download: basename of the URI path
    },
  };
}

/** PyValue → plain JSON-like data for comparisons with the case file. */
function plain(v: unknown): unknown {
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [String(k), plain(x)]));
  if (Array.isArray(v)) return v.map(plain);
  if (typeof v === "bigint") return Number(v);
  return v;
}

/** Tracks which expectation keys a case evaluator checked; unchecked keys fail the case. */
class Expectations {
  private readonly seen = new Set<string>();
  constructor(private readonly c: Case, private readonly sb: Sandbox) {}
  has(key: string): boolean {
    return key in this.c.expect;
  }
  get(key: string): unknown {
    this.seen.add(key);
    return this.sb.subst(this.c.expect[key]);
  }
  done() {
    const left = Object.keys(this.c.expect).filter((k) => !this.seen.has(k));
    expect(left, `expectation keys this runner cannot evaluate for kind ${this.c.kind}`).toEqual([]);
  }
}

async function expectError(x: Expectations, run: () => unknown | Promise<unknown>) {
  let err: unknown;
  try {
    await run();
  } catch (e) {
    err = e;
  }
  expect(err, "expected an error").toBeDefined();
  if (!isMLprojectError(err)) throw err;
  const e = err as MLprojectError;
  // MLflow's text: the engine's own message may say it better.
  const text = mlflowText(e);
  expect(text).toContain(x.get("error"));
  if (x.has("error_type")) expect(e.mlflowType).toBe(x.get("error_type"));
  if (x.has("error_full")) expect(text).toBe(x.get("error_full"));
  if (x.has("error_full_example")) expect(text).toBe(x.get("error_full_example"));
}

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

function envOf(c: Case): Record<string, string | undefined> {
  return Object.fromEntries(Object.entries(c.env ?? {}).map(([k, v]) => [k, v ?? undefined]));
}

async function load(sb: Sandbox): Promise<Project> {
  return loadProject(fsProjectFiles(sb.projectDir), { projectDir: sb.projectDir });
}

function checkProject(x: Expectations, project: Project) {
  if (x.has("name")) expect(project.name).toBe(x.get("name"));
  if (x.has("env_type")) expect(project.envType).toBe(x.get("env_type"));
  if (x.has("env_config_path")) expect(project.envConfigPath).toBe(x.get("env_config_path"));
  if (x.has("docker_env")) expect(plain(project.dockerEnv?.raw ?? null)).toEqual(x.get("docker_env"));
  if (x.has("entry_points")) {
    expect([...project.entryPoints.keys()]).toEqual(Object.keys(x.get("entry_points") as object));
  }
}

const evaluators: Record<string, (c: Case, sb: Sandbox, x: Expectations) => Promise<void>> = {
  async command(c, sb, x) {
    const storage = c.storage_dir != null;
    const run = async () => {
      const project = await load(sb);
      const ep = getEntryPoint(project, c.entry_point ?? "main", { env: envOf(c) })!;
      const user = userParams(c, sb);
      const command = storage ? await resolveCommand(ep, user, resolver(sb)) : computeCommand(ep, user);
      return { project, ep, user, command };
    };
    if (x.has("error")) return expectError(x, run);
    const { project, ep, user, command } = await run();
    expect(command).toBe(x.get("command"));
    checkProject(x, project);
    if (x.has("params") || x.has("extra_params")) {
      const computed = storage ? await resolveParameters(ep, user, resolver(sb)) : computeParameters(ep, user);
      if (x.has("params")) expect(Object.fromEntries(computed.params)).toEqual(x.get("params"));
      if (x.has("extra_params")) expect(Object.fromEntries(computed.extraParams)).toEqual(x.get("extra_params"));
    }
    if (x.has("parameter_types")) {
      const want = x.get("parameter_types") as Record<string, string>;
      for (const [name, type] of Object.entries(want)) {
        expect(ep.parameters.find((p) => p.name === name)?.type, name).toBe(type);
      }
    }
  },
  async compute_parameters(c, sb, x) {
    const project = await load(sb);
    const ep = getEntryPoint(project, c.entry_point ?? "main", { env: envOf(c) })!;
    const user = userParams(c, sb);
    const computed =
      c.storage_dir != null ? await resolveParameters(ep, user, resolver(sb)) : computeParameters(ep, user);
    expect(Object.fromEntries(computed.params)).toEqual(x.get("params"));
    expect(Object.fromEntries(computed.extraParams)).toEqual(x.get("extra_params"));
  },
  async load_project(_c, sb, x) {
    if (x.has("error")) return expectError(x, () => load(sb));
    const project = await load(sb);
    checkProject(x, project);
    if (x.has("get_entry_point_main_error")) {
      const want = x.get("get_entry_point_main_error");
      let err: unknown;
      try {
        getEntryPoint(project, "main");
      } catch (e) {
        err = e;
      }
      expect(isMLprojectError(err)).toBe(true);
      expect(mlflowText(err as MLprojectError)).toBe(want);
    }
  },
  async logged_params(c, sb, x) {
    const project = await load(sb);
    const ep = getEntryPoint(project, c.entry_point ?? "main")!;
    expect(Object.fromEntries(loggedParams(ep, userParams(c, sb)))).toEqual(x.get("logged_params"));
  },
  async cli_parse(c, _sb, x) {
    const run = () => parseParamFlags(c.cli_args ?? []);
    if (x.has("error")) return expectError(x, run);
    expect(Object.fromEntries(run())).toEqual(x.get("parameters"));
  },
  async python_env(c, _sb, x) {
    const run = () => parsePythonEnv(c.env_file ?? "", { launcherPythonVersion: LAUNCHER_PYTHON });
    if (x.has("error")) return expectError(x, run);
    const env = run();
    expect(env.python).toBe(x.get("python"));
    expect(env.buildDependencies).toEqual(x.get("build_dependencies"));
    expect(env.dependencies).toEqual(x.get("dependencies"));
  },
  async conda_to_python_env(c, _sb, x) {
    const run = () => condaToPythonEnv(c.env_file ?? "", { launcherPythonVersion: LAUNCHER_PYTHON });
    if (x.has("error")) return expectError(x, run);
    const env = run();
    expect(env.python).toBe(x.get("python"));
    expect(env.buildDependencies).toEqual(x.get("build_dependencies"));
    expect(env.dependencies).toEqual(x.get("dependencies"));
    if (x.has("warning_unmatched")) expect(env.unmatched).toEqual(x.get("warning_unmatched"));
  },
};

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
        // A kind outside this project's list is reported as a failure, never skipped silently.
        if (!KINDS.has(c.kind) || !evaluators[c.kind]) {
          throw new Error(`case ${c.id}: kind '${c.kind}' is not evaluated by this runner`);
        }
        const sb = sandbox(c);
        const x = new Expectations(c, sb);
        await evaluators[c.kind]!(c, sb, x);
        x.done();
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
