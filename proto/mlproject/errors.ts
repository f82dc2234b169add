// One error family for the whole engine. Each error records the Python exception MLflow raises
// in the same situation (`mlflowType`) and, where the engine knows it, MLflow's exact text
// (`mlflowMessage`), while `message` adds the context MLflow leaves out (entry point, parameter,
// what was expected). `mlflowMessage` is left undefined rather than guessed (e.g. PyYAML's
// wording of a syntax error), so "MLflow says exactly this" is never claimed by accident.

/** The Python exception MLflow raises (or would crash with) for the same input. */
export type MLflowErrorType = "ExecutionException" | "MlflowException" | "KeyError" | "ValueError" | "IndexError" | "AttributeError" | "TypeError" | "click.UsageError" | "yaml.YAMLError";

export type MLprojectErrorKind =
  | "yaml" // the text is not YAML PyYAML's safe_load accepts
  | "project" // the MLproject structure is unusable (MLflow crashes or raises at load time)
  | "entry_point" // entry point lookup failed
  | "parameter" // missing / invalid parameter value
  | "template" // str.format of the command failed
  | "env_file" // python_env.yaml / conda.yaml invalid
  | "cli"; // -P argument parsing

export interface MLprojectErrorDetails {
  mlflowType: MLflowErrorType;
  /** MLflow's own message, verbatim; only where the engine knows MLflow's exact wording. */
  mlflowMessage?: string;
  entryPoint?: string;
  parameter?: string;
  /** Parameters involved (e.g. every missing one), in declaration order. */
  parameters?: readonly string[];
  expected?: string;
  cause?: unknown;
}

const BRAND = Symbol.for("mlflow-parallels.mlproject.error");

export class MLprojectError extends Error {
  override name = "MLprojectError";
  readonly kind: MLprojectErrorKind;
  readonly mlflowType: MLflowErrorType;
  /** MLflow's text for the same failure (also when it equals `message`); undefined when not known. */
  readonly mlflowMessage: string | undefined;
  readonly entryPoint: string | undefined;
  readonly parameter: string | undefined;
  readonly parameters: readonly string[] | undefined;
  readonly expected: string | undefined;
  readonly [BRAND] = true;

  constructor(kind: MLprojectErrorKind, message: string, details: MLprojectErrorDetails) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.kind = kind;
    this.mlflowType = details.mlflowType;
    this.mlflowMessage = details.mlflowMessage;
    this.entryPoint = details.entryPoint;
    this.parameter = details.parameter;
    this.parameters = details.parameters;
    this.expected = details.expected;
  }
}

export class YamlError extends MLprojectError {
  override name = "YamlError";
  constructor(message: string, details: Partial<MLprojectErrorDetails> = {}) {
    super("yaml", message, { mlflowType: "yaml.YAMLError", ...details });
  }
}

export class ProjectSpecError extends MLprojectError {
  override name = "ProjectSpecError";
  constructor(message: string, details: MLprojectErrorDetails) {
    super("project", message, details);
  }
}

export class EntryPointError extends MLprojectError {
  override name = "EntryPointError";
  constructor(message: string, details: MLprojectErrorDetails) {
    super("entry_point", message, details);
  }
}

export class ParameterError extends MLprojectError {
  override name = "ParameterError";
  constructor(message: string, details: MLprojectErrorDetails) {
    super("parameter", message, details);
  }
}

export class TemplateError extends MLprojectError {
  override name = "TemplateError";
  constructor(message: string, details: MLprojectErrorDetails) {
    super("template", message, details);
  }
}

export class EnvFileError extends MLprojectError {
  override name = "EnvFileError";
  constructor(message: string, details: MLprojectErrorDetails) {
    super("env_file", message, details);
  }
}

export class CliUsageError extends MLprojectError {
  override name = "CliUsageError";
  constructor(message: string, details: Partial<MLprojectErrorDetails> = {}) {
    super("cli", message, { mlflowType: "click.UsageError", ...details });
  }
}

/** The text to compare with MLflow's: its own where known, else the engine's message. */
export const mlflowText = (e: MLprojectError): string => e.mlflowMessage ?? e.message;

/** True for any error of this module, also across bundles/realms (checks a global symbol brand). */
export function isMLprojectError(e: unknown): e is MLprojectError {
  return e instanceof MLprojectError || (typeof e === "object" && e !== null && (e as Record<symbol, unknown>)[BRAND] === true);
}

export const isParameterError = (e: unknown): e is ParameterError => isMLprojectError(e) && e.kind === "parameter";
export const isTemplateError = (e: unknown): e is TemplateError => isMLprojectError(e) && e.kind === "template";
export const isYamlError = (e: unknown): e is YamlError => isMLprojectError(e) && e.kind === "yaml";
