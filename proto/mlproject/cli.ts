// `mlflow run -P name=value` parsing (mlflow/cli.py::_user_args_to_dict), for our CLI.
import { CliUsageError } from "./errors.js";

/** `_user_args_to_dict(values, "P")`: split at the first "=", no repeats. Values stay strings. */
export function parseParamArgs(values: readonly string[]): Map<string, string> {
  return parseUserArgs(values, "P") as Map<string, string>;
}

/** `-A` docker args also accept a bare flag, whose value is `true`. */
export function parseUserArgs(values: readonly string[], argumentType: "P" | "A"): Map<string, string | true> {
  const out = new Map<string, string | true>();
  for (const arg of values) {
    const eq = arg.indexOf("=");
    let name: string;
    let value: string | true;
    if (eq >= 0) {
      name = arg.slice(0, eq);
      value = arg.slice(eq + 1);
    } else if (argumentType === "A") {
      name = arg;
      value = true;
    } else {
      const mlflowMessage = `Invalid format for -${argumentType} parameter: '${arg}'. Use -${argumentType} name=value.`;
      throw new CliUsageError(mlflowMessage, { mlflowMessage, parameter: arg, expected: "name=value" });
    }
    if (out.has(name)) {
      const mlflowMessage = `Repeated parameter: '${name}'`;
      throw new CliUsageError(mlflowMessage, { mlflowMessage, parameter: name, expected: "each parameter once" });
    }
    out.set(name, value);
  }
  return out;
}

/**
 * Collect the `-P` / `--param-list` option values from an argv list (click syntax: `-P a=1`,
 * `-Pa=1`, `--param-list a=1`, `--param-list=a=1`) and parse them. Other arguments are ignored.
 */
export function parseParamFlags(argv: readonly string[]): Map<string, string> {
  const values: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "-P" || a === "--param-list") {
      const v = argv[i + 1];
      if (v === undefined) {
        const mlflowMessage = `Option '${a}' requires an argument.`; // click's text, as `mlflow run` prints it
        throw new CliUsageError(mlflowMessage, { mlflowMessage, expected: "name=value" });
      }
      values.push(v);
      i++;
    } else if (a.startsWith("--param-list=")) values.push(a.slice("--param-list=".length));
    else if (a.startsWith("-P") && !a.startsWith("--")) values.push(a.slice(2));
  }
  return parseParamArgs(values);
}
