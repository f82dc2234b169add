/**
 * @module
 * DAG params inside nodes: `${params.NAME}` in a node's `parameters` and `env` values stands for
 * the run's value of the DAG param NAME (the DAG's default, or what the run was submitted with).
 * `$${params.` writes a literal `${params.` (no other `$` sequence is touched).
 *
 * A value that is exactly one reference keeps the param's type (`lr: "${params.lr}"` with
 * `lr: 0.01` gives the number 0.01, so MLflow sees a float); a reference inside a longer string is
 * written as MLflow writes parameter values (Python's `str()`: `True`, `0.01`). Substitution
 * happens when the control plane dispatches a node, so the agent, the rendered command and the
 * params logged in MLflow all see the concrete values.
 */
import { pyStr } from "../mlproject/pystr.js";
import type { DagNode } from "./schema";
import type { Problem } from "./problems";

export type ParamValue = string | number | boolean;

// The escape first, so an escaped reference is never read as one.
const TOKEN = /\$\$\{params\.|\$\{params\.([^}]*)\}/g;
const WHOLE = /^\$\{params\.([^}]*)\}$/;

/** The param names a value refers to, in order (escaped `$${…}` excluded). */
export function paramReferences(value: string): string[] {
  const names: string[] = [];
  for (const m of value.matchAll(TOKEN)) if (m[1] !== undefined) names.push(m[1]);
  return names;
}

/** A value with its references replaced; references to params not in `params` stay as written. */
export function substituteParams(value: string, params: Readonly<Record<string, ParamValue>>): ParamValue {
  const whole = WHOLE.exec(value);
  if (whole && Object.hasOwn(params, whole[1]!)) return params[whole[1]!]!;
  if (!value.includes("${params.")) return value;
  return value.replace(TOKEN, (token, name: string | undefined) => {
    if (name === undefined) return "${params.";
    return Object.hasOwn(params, name) ? valueStr(params[name]!) : token;
  });
}

/** The node as it runs: its `parameters` and `env` with the run's params filled in. */
export function resolveNodeParams(node: DagNode, params: Readonly<Record<string, ParamValue>>): DagNode {
  const parameters = node.parameters && mapStrings(node.parameters, (v) => substituteParams(v, params));
  // Environment values are strings whatever the param's type.
  const env = node.env && (mapStrings(node.env, (v) => asString(substituteParams(v, params))) as Record<string, string>);
  if (parameters === node.parameters && env === node.env) return node;
  return { ...node, ...(parameters ? { parameters } : {}), ...(env ? { env } : {}) };
}

const asString = (v: ParamValue) => (typeof v === "string" ? v : valueStr(v));

/** As the MLproject engine renders a JSON value: whole numbers are Python ints (`3`, not `3.0`). */
const valueStr = (v: ParamValue) => pyStr(typeof v === "number" && Number.isInteger(v) && !Object.is(v, -0) ? BigInt(v) : v);

/** Maps the string values of a record; returns the same object when nothing changed. */
function mapStrings<T extends ParamValue>(record: Record<string, T>, f: (v: string) => ParamValue): Record<string, T | ParamValue> {
  let out: Record<string, T | ParamValue> | undefined;
  for (const [k, v] of Object.entries(record)) {
    if (typeof v !== "string" || !v.includes("${params.")) continue;
    const next = f(v);
    if (next === v) continue;
    out ??= { ...record };
    out[k] = next;
  }
  return out ?? record;
}

/**
 * Problems of a raw DAG document's references (read leniently, like the other graph checks):
 * an empty name, or a param the DAG does not declare.
 */
export function paramReferenceProblems(input: Record<string, unknown>, keyPath: (parent: string, name: string) => string): Problem[] {
  const declared = isRecord(input.params) ? Object.keys(input.params) : [];
  const known = new Set(declared);
  const problems: Problem[] = [];
  if (!Array.isArray(input.nodes)) return problems;
  input.nodes.forEach((node, i) => {
    if (!isRecord(node)) return;
    for (const field of ["parameters", "env"] as const) {
      const values = node[field];
      if (!isRecord(values)) continue;
      for (const [name, value] of Object.entries(values)) {
        if (typeof value !== "string") continue;
        for (const ref of paramReferences(value)) {
          const path = `nodes[${i}].${keyPath(field, name)}`;
          if (ref === "") problems.push({ path, message: "empty param name in ${params.}" });
          else if (!known.has(ref)) {
            const list = declared.length > 0 ? `declared: ${declared.join(", ")}` : "the DAG declares no params";
            problems.push({ path, message: `unknown DAG param ${JSON.stringify(ref)} in \${params.${ref}} (${list})` });
          }
        }
      }
    }
  });
  return problems;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
