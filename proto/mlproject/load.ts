// load_project and Project.get_entry_point (_project_spec.py), over injected project files so
// the same code runs in workerd, the browser and Node.
import { EntryPointError, ProjectSpecError } from "./errors.js";
import { type EntryPoint, parseEntryPoint } from "./params.js";
import { posixJoin, splitextExt } from "./pathutil.js";
import { pyRepr, pyStr } from "./pystr.js";
import { isPyDict, type PyDict, type PyValue, pyTypeName } from "./pytypes.js";
import { shlexQuote } from "./shlex.js";
import { loadYaml } from "./yaml11.js";

/** A project's files. Paths are relative to the project root with "/" separators. */
export interface ProjectFiles {
  /** Names of the entries directly in the project root (files and folders), in listing order. */
  list(): readonly string[] | Promise<readonly string[]>;
  /**
   * Text of the file at `path`, or null if there is none. `path` is MLflow's
   * `os.path.join(project_dir, value)` made relative, so it may be absolute or contain `..`.
   */
  read(path: string): string | null | Promise<string | null>;
}

/** ProjectFiles over a plain map of relative path → text. */
export function filesFromMap(files: ReadonlyMap<string, string> | Readonly<Record<string, string>>): ProjectFiles {
  const map = files instanceof Map ? new Map(files) : new Map(Object.entries(files));
  return {
    list: () => [...new Set([...map.keys()].map((p) => p.replace(/^\.\//, "").split("/")[0]!))],
    read: (path) => map.get(path.replace(/^\.\//, "")) ?? null,
  };
}

export type EnvType = "docker_env" | "python_env" | "conda_env";
export const ENV_TYPES: readonly EnvType[] = ["docker_env", "python_env", "conda_env"];

export interface DockerEnv {
  readonly image: string;
  readonly volumes: readonly string[];
  /** `[NAME, value]` defines a variable, `"NAME"` copies it from the launcher's environment. */
  readonly environment: ReadonlyArray<string | readonly PyValue[]>;
  /** The whole `docker_env` mapping as loaded (other keys are ignored by MLflow). */
  readonly raw: PyDict;
}

export interface DatabricksSparkJob {
  readonly pythonFile: PyValue;
  readonly parameters: PyValue;
  readonly pythonLibraries: PyValue;
}

export interface Project {
  /** `name:` (str() of it), null when absent — also for projects without an MLproject file. */
  readonly name: string | null;
  /** null only for Databricks spark job projects. */
  readonly envType: EnvType | null;
  /** MLflow's `os.path.join(project_dir, <file>)`; null for docker and bare virtualenv. */
  readonly envConfigPath: string | null;
  /** Text of that env file (python_env.yaml / conda.yaml), read at load time. */
  readonly envConfigText: string | null;
  readonly dockerEnv: DockerEnv | null;
  /** Declared entry points in file order. */
  readonly entryPoints: ReadonlyMap<string, EntryPoint>;
  readonly databricksSparkJob: DatabricksSparkJob | null;
  /** Name of the MLproject file found (any capitalisation), null when there is none. */
  readonly mlprojectFile: string | null;
}

export interface LoadProjectOptions {
  /** Directory used in `envConfigPath` (MLflow gives absolute paths). Default: "" (relative). */
  projectDir?: string;
}

const MLFLOW_EXCEPTION_DOCKER_IMAGE = "Project configuration (MLproject file) was invalid: Docker environment specified but no image attribute found.";
const DOCKER_VOLUMES = "Project configuration (MLproject file) was invalid: Docker volumes must be a list of strings, " + `e.g.: '["/path1/:/path1", "/path2/:/path2"])`;
const DOCKER_ENVIRONMENT =
  "Project configuration (MLproject file) was invalid: environment must be a list containing either strings (to copy environment " +
  "variables from host system) or lists of string pairs (to define new environment variables)." +
  `E.g.: '[["NEW_VAR", "new_value"], "VAR_TO_COPY_FROM_HOST"])`;

/** `_find_mlproject`: first root entry whose lower-cased name is "mlproject". */
export async function findMLprojectFile(files: ProjectFiles): Promise<string | null> {
  for (const name of await files.list()) if (name.toLowerCase() === "mlproject") return name;
  return null;
}

const truthy = (v: PyValue | undefined): boolean => {
  if (v === undefined || v === null || v === false || v === "" || v === 0n || v === 0) return false;
  if (Array.isArray(v)) return v.length > 0;
  if (v instanceof Map) return v.size > 0;
  return true;
};

/** Parse MLproject text (null = no file) the way `load_project` does, reading env files. */
export async function loadProject(files: ProjectFiles, options: LoadProjectOptions = {}): Promise<Project> {
  const mlprojectFile = await findMLprojectFile(files);
  const text = mlprojectFile === null ? null : await files.read(mlprojectFile);
  return parseProject(text, files, { ...options, mlprojectFile });
}

export async function parseProject(text: string | null, files: ProjectFiles, options: LoadProjectOptions & { mlprojectFile?: string | null } = {}): Promise<Project> {
  const fileName = options.mlprojectFile ?? "MLproject";
  const dir = options.projectDir ?? "";
  const yaml: PyValue = text === null ? new Map() : loadYaml(text, { source: fileName });
  if (!isPyDict(yaml)) {
    // MLflow crashes here with AttributeError ('NoneType' object has no attribute 'keys').
    const what = yaml === null ? "is empty (or only comments)" : `holds a ${pyTypeName(yaml)} at the top level`;
    throw new ProjectSpecError(
      `${fileName} ${what}; expected a mapping with keys such as name, entry_points, python_env (MLflow fails with AttributeError: '${pyTypeName(yaml)}' object has no attribute 'keys')`,
      {
        mlflowType: "AttributeError",
        mlflowMessage: `'${pyTypeName(yaml)}' object has no attribute 'keys'`,
        expected: "a YAML mapping at the top level",
      },
    );
  }
  const envFields = [...yaml.keys()].filter((k): k is EnvType => ENV_TYPES.includes(k as EnvType));
  if (envFields.length > 1) {
    // Python prints a set; its order is arbitrary, file order is used here (one order MLflow may print).
    const mlflowMessage = `Project cannot contain multiple environment fields: {${envFields.map((f) => pyRepr(f)).join(", ")}}`;
    throw new ProjectSpecError(mlflowMessage, {
      mlflowType: "ExecutionException",
      mlflowMessage,
      expected: "at most one of docker_env, python_env, conda_env",
    });
  }
  const rawName = yaml.get("name") ?? null;
  const name = rawName === null ? null : pyStr(rawName);

  const rawEps = yaml.has("entry_points") ? yaml.get("entry_points")! : new Map<PyValue, PyValue>();
  if (!isPyDict(rawEps)) {
    throw new ProjectSpecError(`${fileName}: 'entry_points' must be a mapping of entry point name to {parameters, command}, got ${pyTypeName(rawEps)} ${pyRepr(rawEps)}`, {
      mlflowType: "AttributeError",
      mlflowMessage: `'${pyTypeName(rawEps)}' object has no attribute 'items'`,
      expected: "a mapping of entry points",
    });
  }
  const entryPoints = new Map<string, EntryPoint>();
  for (const [k, v] of rawEps) entryPoints.set(pyStr(k), parseEntryPoint(pyStr(k), v));

  const base = { name, entryPoints, mlprojectFile: options.mlprojectFile ?? null };
  const none = { envConfigPath: null, envConfigText: null, dockerEnv: null, databricksSparkJob: null };

  const spark = yaml.get("databricks_spark_job") ?? null;
  if (spark !== null) return { ...base, ...none, envType: null, databricksSparkJob: sparkJob(spark, yaml, entryPoints) };

  const docker = yaml.get("docker_env");
  if (truthy(docker)) return { ...base, ...none, envType: "docker_env", dockerEnv: dockerEnv(docker!) };

  const envFile = async (envType: EnvType, rel: string, label: string, required: boolean) => {
    const path = posixJoin(dir, rel);
    const content = await files.read(rel);
    if (content === null) {
      if (!required) return null;
      const mlflowMessage = `Project specified ${label} file ${path}, but no such file was found.`;
      throw new ProjectSpecError(mlflowMessage, {
        mlflowType: "ExecutionException",
        mlflowMessage,
        expected: `the ${label} file named in ${fileName}`,
      });
    }
    return { ...base, ...none, envType, envConfigPath: path, envConfigText: content };
  };
  for (const [key, label] of [
    ["python_env", "python_env"],
    ["conda_env", "conda environment"],
  ] as const) {
    const v = yaml.get(key);
    if (truthy(v)) {
      if (typeof v !== "string") {
        throw new ProjectSpecError(`${fileName}: '${key}' must be a file name, got ${pyTypeName(v!)} ${pyRepr(v!)}`, {
          mlflowType: "TypeError",
          mlflowMessage: `expected str, bytes or os.PathLike object, not ${pyTypeName(v!)}`,
          expected: "a relative path to the env file",
        });
      }
      return (await envFile(key, v, label, true))!;
    }
  }
  return (
    (await envFile("python_env", "python_env.yaml", "python_env", false)) ??
    (await envFile("conda_env", "conda.yaml", "conda environment", false)) ?? {
      ...base,
      ...none,
      envType: "python_env",
    }
  );
}

function dockerEnv(v: PyValue): DockerEnv {
  if (!isPyDict(v)) {
    throw new ProjectSpecError(`Project configuration (MLproject file) was invalid: docker_env must be a mapping with an 'image' key, got ${pyTypeName(v)} ${pyRepr(v)}`, {
      mlflowType: "AttributeError",
      mlflowMessage: `'${pyTypeName(v)}' object has no attribute 'get'`,
      expected: "a mapping",
    });
  }
  const image = v.get("image");
  if (!truthy(image)) {
    throw new ProjectSpecError(MLFLOW_EXCEPTION_DOCKER_IMAGE, {
      mlflowType: "ExecutionException",
      mlflowMessage: MLFLOW_EXCEPTION_DOCKER_IMAGE,
      expected: "docker_env.image",
    });
  }
  const volumes = v.get("volumes");
  if (truthy(volumes) && !(Array.isArray(volumes) && volumes.every((x) => typeof x === "string"))) {
    throw new ProjectSpecError(DOCKER_VOLUMES, { mlflowType: "ExecutionException", mlflowMessage: DOCKER_VOLUMES, expected: "a list of strings" });
  }
  const environment = v.get("environment");
  if (truthy(environment) && !(Array.isArray(environment) && environment.every((x) => typeof x === "string" || Array.isArray(x)))) {
    throw new ProjectSpecError(DOCKER_ENVIRONMENT, {
      mlflowType: "ExecutionException",
      mlflowMessage: DOCKER_ENVIRONMENT,
      expected: "a list of strings or [name, value] lists",
    });
  }
  return {
    image: pyStr(image!),
    volumes: truthy(volumes) ? (volumes as string[]) : [],
    environment: truthy(environment) ? (environment as Array<string | PyValue[]>) : [],
    raw: v,
  };
}

function sparkJob(spec: PyValue, yaml: PyDict, eps: ReadonlyMap<string, EntryPoint>): DatabricksSparkJob {
  // Every message below is MLflow's own (load_project's databricks_spark_job branch).
  const fail = (m: string): never => {
    throw new ProjectSpecError(m, { mlflowType: "MlflowException", mlflowMessage: m });
  };
  if (!isPyDict(spec)) {
    // MLflow calls `.get("python_file")` on it and crashes.
    throw new ProjectSpecError(`databricks_spark_job must be a mapping, got ${pyTypeName(spec)}`, {
      mlflowType: "AttributeError",
      mlflowMessage: `'${pyTypeName(spec)}' object has no attribute 'get'`,
      expected: "a mapping",
    });
  }
  const pythonFile = spec.get("python_file") ?? null;
  if (pythonFile === null && eps.size === 0) {
    fail("Databricks Spark job requires either 'databricks_spark_job.python_file' setting or 'entry_points' setting.");
  }
  if (pythonFile !== null && eps.size > 0) {
    fail("Databricks Spark job does not allow setting both 'databricks_spark_job.python_file' and 'entry_points'.");
  }
  for (const ep of eps.values()) {
    for (const p of ep.parameters) {
      if (p.type === "path") {
        fail(`Databricks Spark job does not support entry point parameter of 'path' type. '${p.name}' value type is invalid.`);
      }
    }
  }
  if (yaml.has("docker_env")) fail("Databricks Spark job does not support setting docker environment.");
  if (yaml.has("python_env")) fail("Databricks Spark job does not support setting python environment.");
  if (yaml.has("conda_env")) fail("Databricks Spark job does not support setting conda environment.");
  return {
    pythonFile,
    parameters: spec.has("parameters") ? spec.get("parameters")! : [],
    pythonLibraries: spec.has("python_libraries") ? spec.get("python_libraries")! : [],
  };
}

export interface GetEntryPointOptions {
  /** The launcher's environment: `.sh` entry points run with its SHELL (default "bash"). */
  env?: Readonly<Record<string, string | undefined>>;
}

/** `Project.get_entry_point`: a declared entry point, else a `.py`/`.sh`/`.R` script. */
export function getEntryPoint(project: Project, name: string, options: GetEntryPointOptions = {}): EntryPoint | null {
  const spark = project.databricksSparkJob;
  if (spark) {
    if (spark.pythonFile !== null) return null; // MLflow ignores the entry point then
    if (!project.entryPoints.has(name)) {
      const mlflowMessage = `The entry point '${name}' is not defined in the Databricks spark job MLproject file.`;
      throw new EntryPointError(mlflowMessage, {
        mlflowType: "MlflowException",
        mlflowMessage,
        entryPoint: name,
      });
    }
  }
  const declared = project.entryPoints.get(name);
  if (declared) return declared;
  const ext = splitextExt(name);
  const shell = options.env?.SHELL;
  const runners: Record<string, string> = { ".py": "python", ".sh": shell === undefined ? "bash" : shell };
  const runner = Object.hasOwn(runners, ext) ? runners[ext] : undefined;
  if (runner !== undefined) return { name, parameters: [], command: `${runner} ${shlexQuote(name)}` };
  if (ext === ".R") {
    return { name, parameters: [], command: `Rscript -e "mlflow::mlflow_source('${shlexQuote(name)}')" --args` };
  }
  const keys = [...project.entryPoints.keys()];
  const mlflowMessage = `Could not find ${name} among entry points ${pyRepr(keys)} or interpret ${name} as a ` + `runnable script. Supported script file extensions: ${pyRepr(Object.keys(runners))}`;
  throw new EntryPointError(mlflowMessage, {
    mlflowType: "ExecutionException",
    mlflowMessage,
    entryPoint: name,
    expected: keys.length ? `one of ${keys.join(", ")} or a .py/.sh/.R script` : "a .py/.sh/.R script (the project declares no entry points)",
  });
}
