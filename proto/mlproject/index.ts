// MLproject engine: loads MLflow projects and renders entry-point commands exactly as MLflow does.
// Runtime-free (workerd, browser, Node): files, cwd, environment and downloads are injected.
export {
  CliUsageError,
  EntryPointError,
  EnvFileError,
  isMLprojectError,
  isParameterError,
  isTemplateError,
  isYamlError,
  MLprojectError,
  mlflowText,
  type MLprojectErrorKind,
  type MLflowErrorType,
  ParameterError,
  ProjectSpecError,
  TemplateError,
  YamlError,
} from "./errors.js";
export { loadYaml } from "./yaml11.js";
export { pyRepr, pyStr } from "./pystr.js";
export { PyBytes, PyDate, PyDateTime, type PyDict, PySet, PyTuple, type PyValue } from "./pytypes.js";
export { shlexQuote } from "./shlex.js";
export { pyFormat, FormatFailure } from "./format.js";
export {
  type ComputedParameters,
  computeCommand,
  computeParameters,
  type EntryPoint,
  isRequired,
  loggedParams,
  missingParameters,
  type Parameter,
  type ParamInput,
  type PathResolver,
  renderCommand,
  resolveCommand,
  resolveParameters,
  type UserParams,
} from "./params.js";
export {
  type DatabricksSparkJob,
  type DockerEnv,
  ENV_TYPES,
  type EnvType,
  filesFromMap,
  findMLprojectFile,
  getEntryPoint,
  type GetEntryPointOptions,
  loadProject,
  type LoadProjectOptions,
  type Project,
  type ProjectFiles,
} from "./load.js";
export {
  type CondaConversion,
  condaToPythonEnv,
  type EnvManager,
  parsePythonEnv,
  projectPythonEnv,
  type PythonEnv,
  type PythonEnvOptions,
  resolveEnvManager,
} from "./env.js";
export { parseParamArgs, parseParamFlags, parseUserArgs } from "./cli.js";
export { checkParameters, type StrictWarning, type StrictWarningCode } from "./strict.js";
