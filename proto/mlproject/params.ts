// Entry points and their parameters: MLflow's EntryPoint/Parameter classes (_project_spec.py).
// Only `path` and `uri` types change a value; every value ends up as shlex.quote(str(value)).
import { ParameterError, ProjectSpecError, TemplateError } from "./errors.js";
import { FormatFailure, pyFormat } from "./format.js";
import { localPathOrNull, posixAbspath, posixJoin, urlSplit } from "./pathutil.js";
import { pyRepr, pyStr } from "./pystr.js";
import { isPyDict, type PyValue, pyTypeName } from "./pytypes.js";
import { shlexQuote } from "./shlex.js";

export interface Parameter {
  readonly name: string;
  /** The declared type, as str(); MLflow only acts on "path" and "uri" (others pass through). */
  readonly type: string;
  /** `null` (YAML `~`/absent) means required. `default: 0`, `false` or `""` are optional. */
  readonly default: PyValue;
}

export interface EntryPoint {
  readonly name: string;
  /** In declaration order (the order of the missing-parameter message and of `param_<i>`). */
  readonly parameters: readonly Parameter[];
  /** The command template; anything but a str fails when rendered, as in MLflow. */
  readonly command: PyValue;
}

export const isRequired = (p: Parameter): boolean => p.default === null;

/**
 * A parameter value as a caller gives it. Python-typed values keep their type until str():
 * bigint is an int, a JS number with an integral value is an int (as json.loads reads `10`),
 * any other number is a float, null is None. CLI values are plain strings.
 */
export type ParamInput = PyValue;

export type UserParams = ReadonlyMap<string, ParamInput> | Readonly<Record<string, ParamInput>> | ReadonlyArray<readonly [string, ParamInput]>;

/** Ordered name → value pairs as a Map (Python dicts keep insertion order). */
export function toParamMap(user: UserParams | null | undefined): Map<string, PyValue> {
  const entries: Iterable<readonly [string, ParamInput]> =
    user == null ? [] : user instanceof Map ? user.entries() : Array.isArray(user) ? (user as ReadonlyArray<readonly [string, ParamInput]>) : Object.entries(user as Record<string, ParamInput>);
  const out = new Map<string, PyValue>();
  for (const [k, v] of entries) {
    out.set(k, typeof v === "number" && Number.isInteger(v) && !Object.is(v, -0) ? BigInt(v) : v);
  }
  return out;
}

const got = (v: PyValue) => `${pyTypeName(v)} ${pyRepr(v)}`;

/** `Parameter(name, yaml_obj)`: a bare string is the type (required); a mapping has type/default. */
export function parseParameter(entryPoint: string, name: string, spec: PyValue): Parameter {
  if (typeof spec === "string") return { name, type: spec, default: null };
  if (!isPyDict(spec)) {
    throw new ProjectSpecError(`Entry point '${entryPoint}', parameter '${name}': expected a type name (e.g. float) or a mapping like {type: float, default: 0.1}, got ${got(spec)}`, {
      mlflowType: "AttributeError",
      mlflowMessage: `'${pyTypeName(spec)}' object has no attribute 'get'`,
      entryPoint,
      parameter: name,
      expected: "a type name or a mapping with 'type' and/or 'default'",
    });
  }
  const type = spec.has("type") ? spec.get("type")! : "string";
  return { name, type: pyStr(type), default: spec.get("default") ?? null };
}

/** `EntryPoint(name, parameters, command)` from the entry point's YAML mapping. */
export function parseEntryPoint(name: string, yaml: PyValue): EntryPoint {
  if (!isPyDict(yaml)) {
    throw new ProjectSpecError(`Entry point '${name}' must be a mapping with a 'command' (and optional 'parameters'), got ${got(yaml)}`, {
      mlflowType: "AttributeError",
      mlflowMessage: `'${pyTypeName(yaml)}' object has no attribute 'get'`,
      entryPoint: name,
      expected: "a mapping with 'command' and optional 'parameters'",
    });
  }
  const params = yaml.has("parameters") ? yaml.get("parameters")! : new Map<PyValue, PyValue>();
  if (!isPyDict(params)) {
    throw new ProjectSpecError(`Entry point '${name}': 'parameters' must be a mapping of parameter name to type or {type, default}, got ${got(params)}`, {
      mlflowType: "AttributeError",
      mlflowMessage: `'${pyTypeName(params)}' object has no attribute 'items'`,
      entryPoint: name,
      expected: "a mapping of parameters",
    });
  }
  // Names are used as str everywhere downstream (format kwargs, -P names, logged params).
  const parameters = [...params].map(([k, v]) => parseParameter(name, pyStr(k), v));
  return { name, parameters, command: yaml.get("command") ?? null };
}

/** `_validate_parameters`: every required parameter must be given (a given None counts). */
export function missingParameters(ep: EntryPoint, user: ReadonlyMap<string, PyValue>): string[] {
  return ep.parameters.filter((p) => !user.has(p.name) && isRequired(p)).map((p) => p.name);
}

function validate(ep: EntryPoint, user: ReadonlyMap<string, PyValue>): void {
  const missing = missingParameters(ep, user);
  if (missing.length === 0) return;
  const mlflowMessage = `No value given for missing parameters: ${missing.map((m) => `'${m}'`).join(", ")}`;
  throw new ParameterError(`${mlflowMessage} (entry point '${ep.name}': these parameters have no default, pass them as ${missing.map((m) => `-P ${m}=...`).join(" ")})`, {
    mlflowType: "ExecutionException",
    mlflowMessage,
    entryPoint: ep.name,
    parameter: missing[0],
    parameters: missing,
    expected: "a value for every parameter without a default",
  });
}

function requireString(ep: EntryPoint, p: Parameter, value: PyValue): string {
  if (typeof value === "string") return value;
  // MLflow crashes inside urllib.parse on non-str values.
  throw new ParameterError(`Entry point '${ep.name}', parameter '${p.name}' has type ${p.type} but its value is ${got(value)}; expected a string`, {
    mlflowType: "AttributeError",
    mlflowMessage: `'${pyTypeName(value)}' object has no attribute 'decode'`,
    entryPoint: ep.name,
    parameter: p.name,
    expected: `a ${p.type} string`,
  });
}

/** `Parameter._compute_uri_value`: the value needs a URI scheme (`s3://`, `file://`, `C:`…). */
function uriValue(ep: EntryPoint, p: Parameter, value: PyValue): PyValue {
  const s = requireString(ep, p, value);
  if (urlSplit(s).scheme.length > 0) return value;
  const mlflowMessage = `Expected URI for parameter ${p.name} but got ${s}`;
  throw new ParameterError(`${mlflowMessage} (entry point '${ep.name}': a 'uri' parameter needs a scheme, e.g. s3://bucket/key or file:///abs/path; local paths are rejected)`, {
    mlflowType: "ExecutionException",
    mlflowMessage,
    entryPoint: ep.name,
    parameter: p.name,
    expected: "a URI with a scheme",
  });
}

/** How `path` parameters are resolved when a command is rendered for execution. */
export interface PathResolver {
  /** The launcher's working directory: relative local paths resolve against it, not the project. */
  readonly cwd: string;
  /** This run's storage directory (MLflow: `tempfile.mkdtemp(dir=storage_dir)`), already created. */
  readonly runStorageDir: string;
  /** `os.path.exists` of an absolute local path. */
  exists(absPath: string): boolean | Promise<boolean>;
  /** Download `uri` into `destDir` (which the resolver creates) and return the local file path. */
  download(uri: string, destDir: string): string | Promise<string>;
}

/** `Parameter._compute_path_value`. */
async function pathValue(ep: EntryPoint, p: Parameter, value: PyValue, index: number, resolver: PathResolver): Promise<PyValue> {
  const s = requireString(ep, p, value);
  const local = localPathOrNull(s);
  if (local) {
    const abs = posixAbspath(local, resolver.cwd);
    if (!(await resolver.exists(abs))) {
      const mlflowMessage = `Got value ${s} for parameter ${p.name}, but no such file or directory was found.`;
      throw new ParameterError(`${mlflowMessage} (entry point '${ep.name}': a local 'path' value must exist; relative paths resolve against the launcher's directory ${resolver.cwd})`, {
        mlflowType: "ExecutionException",
        mlflowMessage,
        entryPoint: ep.name,
        parameter: p.name,
        expected: "an existing local file or directory, or a remote URI",
      });
    }
    return abs;
  }
  return resolver.download(s, posixJoin(resolver.runStorageDir, `param_${index}`));
}

export interface ComputedParameters {
  /** Declared parameters (declaration order), each `shlex.quote(str(value))`. */
  readonly params: ReadonlyMap<string, string>;
  /** Undeclared user parameters (user order), sanitised the same way. */
  readonly extraParams: ReadonlyMap<string, string>;
}

const sanitize = (m: ReadonlyMap<string, PyValue>): Map<string, string> => new Map([...m].map(([k, v]) => [k, shlexQuote(pyStr(v))]));

function split(user: ReadonlyMap<string, PyValue>, finals: Map<string, PyValue>): ComputedParameters {
  const extras = new Map<string, PyValue>();
  for (const [k, v] of user) if (!finals.has(k)) extras.set(k, v);
  return { params: sanitize(finals), extraParams: sanitize(extras) };
}

/** The user's value for `p` if given, else its default. */
const givenOrDefault = (p: Parameter, user: ReadonlyMap<string, PyValue>): PyValue => (user.has(p.name) ? user.get(p.name)! : p.default);

/**
 * `compute_parameters(user, storage_dir=None)`: what MLflow logs. `uri` values are checked,
 * `path` values are left as given.
 */
export function computeParameters(ep: EntryPoint, userParams?: UserParams | null): ComputedParameters {
  const user = toParamMap(userParams);
  validate(ep, user);
  const finals = new Map<string, PyValue>();
  for (const p of ep.parameters) {
    const v = givenOrDefault(p, user);
    finals.set(p.name, p.type === "uri" ? uriValue(ep, p, v) : v);
  }
  return split(user, finals);
}

/** `compute_parameters(user, storage_dir)`: as above, and `path` values made absolute/downloaded. */
export async function resolveParameters(ep: EntryPoint, userParams: UserParams | null | undefined, resolver: PathResolver): Promise<ComputedParameters> {
  const user = toParamMap(userParams);
  validate(ep, user);
  const finals = new Map<string, PyValue>();
  let index = 0;
  for (const p of ep.parameters) {
    const v = givenOrDefault(p, user);
    if (p.type === "path") finals.set(p.name, await pathValue(ep, p, v, index, resolver));
    else finals.set(p.name, p.type === "uri" ? uriValue(ep, p, v) : v);
    index++;
  }
  return split(user, finals);
}

/** The logged params (`_create_run` → log_batch): declared then extra, shell-quoted strings. */
export function loggedParams(ep: EntryPoint, userParams?: UserParams | null): Array<[string, string]> {
  const { params, extraParams } = computeParameters(ep, userParams);
  return [...params, ...extraParams];
}

/** `command.format(**params)` then ` --key value` for each extra (the key is not quoted). */
export function renderCommand(ep: EntryPoint, computed: ComputedParameters): string {
  if (typeof ep.command !== "string") {
    throw new ProjectSpecError(
      ep.command === null ? `Entry point '${ep.name}' has no command: add 'command: ...' to it in the MLproject file` : `Entry point '${ep.name}': 'command' must be a string, got ${got(ep.command)}`,
      {
        mlflowType: "AttributeError",
        mlflowMessage: `'${pyTypeName(ep.command)}' object has no attribute 'format'`,
        entryPoint: ep.name,
        expected: "a command string",
      },
    );
  }
  let text: string;
  try {
    text = pyFormat(ep.command, computed.params);
  } catch (e) {
    if (!(e instanceof FormatFailure)) throw e;
    throw templateError(ep, e, computed);
  }
  return [text, ...[...computed.extraParams].map(([k, v]) => `--${k} ${v}`)].join(" ");
}

function templateError(ep: EntryPoint, f: FormatFailure, computed: ComputedParameters): TemplateError {
  const field = f.field === undefined ? "" : ` in {${f.field}}`;
  let hint = "";
  if (f.pythonType === "KeyError") {
    const declared = [...computed.params.keys()].map((k) => `'${k}'`).join(", ") || "none";
    hint = `: {${f.key}} is not a declared parameter (declared: ${declared}); undeclared parameters are only appended as --name value`;
  } else if (f.pythonType === "IndexError" && f.pythonMessage.startsWith("Replacement")) {
    hint = ": positional placeholders like {} or {0} are not supported; name a declared parameter";
  } else if (f.pythonType === "ValueError" && f.field !== undefined) {
    hint = " (values are shell-quoted strings, so numeric format specs do not apply)";
  } else if (f.field === undefined) {
    hint = " (write {{ and }} for literal braces)";
  }
  return new TemplateError(`Entry point '${ep.name}': command template error${field}: ${f.pythonType}: ${f.pythonMessage}${hint}`, {
    mlflowType: f.pythonType,
    mlflowMessage: f.pythonMessage,
    entryPoint: ep.name,
    parameter: f.key,
    expected: "a str.format template using only declared parameter names",
  });
}

/** `compute_command(user, storage_dir=None)`: render without touching `path` values. */
export function computeCommand(ep: EntryPoint, userParams?: UserParams | null): string {
  return renderCommand(ep, computeParameters(ep, userParams));
}

/** `compute_command(user, storage_dir)`: what MLflow executes (`get_entry_point_command`). */
export async function resolveCommand(ep: EntryPoint, userParams: UserParams | null | undefined, resolver: PathResolver): Promise<string> {
  return renderCommand(ep, await resolveParameters(ep, userParams, resolver));
}
