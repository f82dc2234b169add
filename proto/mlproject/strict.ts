// Opt-in checks MLflow itself never makes (it passes float/int values through unvalidated):
// the API and UI use them to warn about a DAG node's parameters before a run.
import { type EntryPoint, type UserParams, isRequired, toParamMap } from "./params.js";
import { pyStr } from "./pystr.js";

export type StrictWarningCode = "missing_required" | "not_a_number" | "not_an_integer";

export interface StrictWarning {
  readonly code: StrictWarningCode;
  readonly entryPoint: string;
  readonly parameter: string;
  /** The declared type ("float" / "int"), or "required". */
  readonly expected: string;
  /** str() of the value that would be rendered; null when missing. */
  readonly value: string | null;
  readonly message: string;
}

// What Python's float() / int() accept for the rendered str (the script parses the argv string).
const PY_FLOAT = /^\s*[+-]?(?:(?:\d(?:_?\d)*)?\.?\d(?:_?\d)*(?:[eE][+-]?\d(?:_?\d)*)?|(?:\d(?:_?\d)*)\.|inf|infinity|nan)\s*$/i;
const PY_INT = /^\s*[+-]?\d(?:_?\d)*\s*$/;

const FLOAT_TYPES = new Set(["float", "double", "number"]);
const INT_TYPES = new Set(["int", "integer", "long"]);

/**
 * Warn where a declared `float`/`int` parameter's value would not parse as that number, and
 * where a required parameter has no value. Never throws; an empty list means no concerns.
 */
export function checkParameters(ep: EntryPoint, userParams?: UserParams | null): StrictWarning[] {
  const user = toParamMap(userParams);
  const out: StrictWarning[] = [];
  for (const p of ep.parameters) {
    const given = user.has(p.name);
    if (!given && isRequired(p)) {
      out.push({
        code: "missing_required",
        entryPoint: ep.name,
        parameter: p.name,
        expected: "required",
        value: null,
        message: `Entry point '${ep.name}': parameter '${p.name}' (${p.type}) is required and has no value`,
      });
      continue;
    }
    const value = pyStr(given ? user.get(p.name)! : p.default);
    const type = p.type.toLowerCase();
    if (FLOAT_TYPES.has(type) && !PY_FLOAT.test(value)) {
      out.push({
        code: "not_a_number",
        entryPoint: ep.name,
        parameter: p.name,
        expected: p.type,
        value,
        message: `Entry point '${ep.name}': parameter '${p.name}' is declared ${p.type} but its value ${JSON.stringify(value)} is not a number`,
      });
    } else if (INT_TYPES.has(type) && !PY_INT.test(value)) {
      out.push({
        code: "not_an_integer",
        entryPoint: ep.name,
        parameter: p.name,
        expected: p.type,
        value,
        message: `Entry point '${ep.name}': parameter '${p.name}' is declared ${p.type} but its value ${JSON.stringify(value)} is not an integer`,
      });
    }
  }
  return out;
}
