// python_env.yaml and conda.yaml as MLflow reads them (mlflow/utils/environment.py::_PythonEnv),
// and the env manager choice of the local backend.
import { EnvFileError } from "./errors.js";
import type { EnvType, Project } from "./load.js";
import { pyRepr, pyStr } from "./pystr.js";
import { isPyDict, type PyValue, pyTypeName, pyTypeRepr } from "./pytypes.js";
import { loadYaml } from "./yaml11.js";

export interface PythonEnv {
  /** Python version; the launcher's own version when the file has none. */
  readonly python: string;
  readonly buildDependencies: readonly string[];
  readonly dependencies: readonly string[];
}

export interface PythonEnvOptions {
  /** `major.minor.micro` of the Python running MLflow (used when the file pins none). */
  launcherPythonVersion: string;
  /** File name for messages. */
  source?: string;
}

const FIELDS = ["python", "build_dependencies", "dependencies"] as const;

/** `_PythonEnv(**dct)`: the three known keys only; python a str; lists must be lists. */
function fromDict(dct: PyValue, opts: PythonEnvOptions): PythonEnv {
  const src = opts.source ?? "python_env.yaml";
  if (!isPyDict(dct)) {
    throw new EnvFileError(`${src} must be a mapping with python, build_dependencies and dependencies, got ${pyTypeName(dct)}`, {
      mlflowType: "TypeError",
      mlflowMessage: `_PythonEnv.from_dict() argument after ** must be a mapping, not ${pyTypeName(dct)}`,
      expected: "a mapping",
    });
  }
  for (const k of dct.keys()) {
    if (typeof k !== "string" || !(FIELDS as readonly string[]).includes(k)) {
      throw new EnvFileError(`${src}: unknown key ${pyRepr(k)}; expected only python, build_dependencies, dependencies`, {
        mlflowType: "TypeError",
        mlflowMessage: typeof k === "string" ? `_PythonEnv.__init__() got an unexpected keyword argument ${pyRepr(k)}` : "keywords must be strings",
        parameter: pyStr(k),
        expected: "python, build_dependencies or dependencies",
      });
    }
  }
  const python = dct.get("python") ?? null;
  if (python !== null && typeof python !== "string") {
    const mlflowMessage = `\`python\` must be a string but got ${pyTypeRepr(python)}`;
    throw new EnvFileError(`${mlflowMessage} (${src}: quote the version, e.g. python: "${pyStr(python)}"; unquoted 3.10 is the float 3.1)`, {
      mlflowType: "TypeError",
      mlflowMessage,
      parameter: "python",
      expected: "a quoted version string",
    });
  }
  const list = (key: "build_dependencies" | "dependencies"): string[] => {
    const v = dct.get(key) ?? null;
    if (v === null) return [];
    if (!Array.isArray(v)) {
      const mlflowMessage = `\`${key}\` must be a list but got ${pyTypeRepr(v)}`;
      throw new EnvFileError(`${mlflowMessage} (${src}: write it as a YAML list, one "- item" per line)`, {
        mlflowType: "TypeError",
        mlflowMessage,
        parameter: key,
        expected: "a list",
      });
    }
    return v.map(pyStr); // MLflow keeps items as loaded; they are requirement strings in practice
  };
  return {
    python: python || opts.launcherPythonVersion, // `python or PYTHON_VERSION`: "" also falls back
    buildDependencies: list("build_dependencies"),
    dependencies: list("dependencies"),
  };
}

/** `_PythonEnv.from_yaml`: parse a python_env.yaml. */
export function parsePythonEnv(text: string, opts: PythonEnvOptions): PythonEnv {
  return fromDict(loadYaml(text, { source: opts.source ?? "python_env.yaml" }), opts);
}

export interface CondaConversion extends PythonEnv {
  /** Conda-only dependencies that are dropped (MLflow logs a warning listing them). */
  readonly unmatched: readonly string[];
  /** The warnings MLflow logs during the conversion. */
  readonly warnings: readonly string[];
}

// `\d` of Python str patterns is any Unicode digit; `$` also matches before a final "\n".
const CONDA_DEP = /^(python|pip|setuptools|wheel)(<|>|<=|>=|=|==|!=)?([\p{Nd}.]+)?\n?$/u;

/** `_PythonEnv.from_conda_yaml`: keep python pin, pip/setuptools/wheel and the pip list. */
export function condaToPythonEnv(text: string, opts: PythonEnvOptions): CondaConversion {
  const src = opts.source ?? "conda.yaml";
  const conda = loadYaml(text, { source: src });
  if (!isPyDict(conda)) {
    throw new EnvFileError(`${src} must be a mapping with a 'dependencies' list, got ${pyTypeName(conda)}`, {
      mlflowType: "AttributeError",
      mlflowMessage: `'${pyTypeName(conda)}' object has no attribute 'get'`,
      expected: "a mapping",
    });
  }
  const deps = conda.has("dependencies") ? conda.get("dependencies")! : [];
  if (!Array.isArray(deps)) {
    throw new EnvFileError(`${src}: 'dependencies' must be a list, got ${pyTypeName(deps)}`, {
      mlflowType: "TypeError",
      mlflowMessage: `'${pyTypeName(deps)}' object is not iterable`,
      parameter: "dependencies",
      expected: "a list",
    });
  }
  let python: string | null = null;
  let build: string[] | null = null;
  let pipDeps: PyValue = null;
  const unmatched: string[] = [];
  const warnings: string[] = [];
  for (const dep of deps) {
    if (typeof dep === "string") {
      const m = CONDA_DEP.exec(dep);
      if (!m) {
        unmatched.push(dep);
        continue;
      }
      const [, pkg, op, version] = m;
      if (!python && pkg === "python") {
        if (op === undefined) {
          const mlflowMessage = `Invalid dependency for python: ${dep}. It must be pinned (e.g. python=3.8.13).`;
          throw new EnvFileError(mlflowMessage, { mlflowType: "MlflowException", mlflowMessage, parameter: "python", expected: "a pinned python version" });
        }
        if (op === "<" || op === ">" || op === "!=") {
          const mlflowMessage = `Invalid version comparator for python: '${op}'. Must be one of ['<=', '>=', '=', '=='].`;
          throw new EnvFileError(mlflowMessage, { mlflowType: "MlflowException", mlflowMessage, parameter: "python", expected: "<=, >=, = or ==" });
        }
        python = version ?? null;
        continue;
      }
      build ??= [];
      build.push(pkg! + (op === "=" ? "==" : (op ?? "")) + (version ?? ""));
    } else if (isPyDict(dep) && dep.has("pip")) {
      pipDeps = dep.get("pip")!;
    } else {
      const mlflowMessage = `Invalid conda dependency: ${pyStr(dep)}. Must be str or dict in the form of {"pip": [...]}`;
      throw new EnvFileError(mlflowMessage, { mlflowType: "MlflowException", mlflowMessage, expected: 'a string or {"pip": [...]}' });
    }
  }
  if (python === null) {
    warnings.push(`${src} does not include a python version specification. Using the current python version ${opts.launcherPythonVersion}.`);
  }
  if (unmatched.length) {
    warnings.push(`The following conda dependencies will not be installed in the resulting environment: ${pyRepr(unmatched)}`);
  }
  const env = fromDict(
    new Map<PyValue, PyValue>([
      ["python", python ?? opts.launcherPythonVersion],
      ["build_dependencies", build],
      ["dependencies", pipDeps],
    ]),
    { ...opts, source: src },
  );
  return { ...env, unmatched, warnings };
}

export type EnvManager = "local" | "virtualenv" | "conda" | "uv";

/** backend/local.py: the env manager used for a project (docker projects always run in docker). */
export function resolveEnvManager(envType: EnvType | null, requested?: EnvManager | null): EnvManager {
  if (requested && envType === "python_env" && requested === "conda") {
    const mlflowMessage = "python_env project cannot be executed using conda. Set `--env-manager` to 'virtualenv' or 'local' to execute this project.";
    throw new EnvFileError(mlflowMessage, { mlflowType: "MlflowException", mlflowMessage, expected: "env manager virtualenv or local" });
  }
  if (requested) return requested;
  return envType === "conda_env" ? "conda" : envType === "docker_env" ? "local" : "virtualenv";
}

/** The python env a project runs with under virtualenv: its python_env.yaml, or its conda file converted. */
export function projectPythonEnv(project: Project, opts: PythonEnvOptions): PythonEnv {
  const source = project.envConfigPath ?? undefined;
  if (project.envType === "python_env" && project.envConfigText !== null) {
    return parsePythonEnv(project.envConfigText, { ...opts, source });
  }
  if (project.envType === "conda_env" && project.envConfigText !== null) {
    return condaToPythonEnv(project.envConfigText, { ...opts, source });
  }
  return { python: opts.launcherPythonVersion, buildDependencies: [], dependencies: [] };
}
