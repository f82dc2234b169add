/**
 * @module
 * Building `runs/search` filter strings safely: `tags.<key> = '<value>'` clauses joined by AND.
 * Keys outside `[A-Za-z0-9_.]` are wrapped in backticks; values are quoted with `'` (or `"` when
 * they contain `'`). A value containing both quote characters cannot be expressed in MLflow's
 * grammar and is refused.
 *
 * @example
 * ```ts
 * runFilter({ parentRunId: id, tags: { "parallels.node": "count" } })
 * // "tags.mlflow.parentRunId = '…' AND tags.parallels.node = 'count'"
 * ```
 */
import { MlflowClientError } from "./errors";
import { MLFLOW_TAGS } from "./tags";
import type { RunStatus } from "./types";

/** `<entity>.<key>` with the key quoted when needed. */
export function filterKey(entity: "tags" | "params" | "metrics" | "attributes", key: string): string {
  if (/^[A-Za-z_][A-Za-z0-9_.]*$/.test(key) && !key.endsWith(".")) return `${entity}.${key}`;
  if (key.includes("`")) throw new MlflowClientError("INVALID_ARGUMENT", `a search key cannot contain a backtick: ${key}`);
  return `${entity}.\`${key}\``;
}

/** A string literal of the filter grammar. */
export function quoteFilterValue(value: string): string {
  if (!value.includes("'")) return `'${value}'`;
  if (!value.includes('"')) return `"${value}"`;
  throw new MlflowClientError("INVALID_ARGUMENT", `a search value cannot contain both ' and ": ${value}`);
}

export interface RunFilterInput {
  /** Runs nested under this run (`tags.mlflow.parentRunId`). */
  parentRunId?: string;
  /** Exact tag values. */
  tags?: Record<string, string>;
  /** Exact param values. */
  params?: Record<string, string>;
  runName?: string;
  status?: RunStatus;
}

/** AND of equality clauses; an empty input gives the empty filter (every run). */
export function runFilter(f: RunFilterInput): string {
  const clauses: string[] = [];
  if (f.parentRunId !== undefined) clauses.push(`${filterKey("tags", MLFLOW_TAGS.parentRunId)} = ${quoteFilterValue(f.parentRunId)}`);
  for (const [k, v] of Object.entries(f.tags ?? {})) clauses.push(`${filterKey("tags", k)} = ${quoteFilterValue(v)}`);
  for (const [k, v] of Object.entries(f.params ?? {})) clauses.push(`${filterKey("params", k)} = ${quoteFilterValue(v)}`);
  if (f.runName !== undefined) clauses.push(`attributes.run_name = ${quoteFilterValue(f.runName)}`);
  if (f.status !== undefined) clauses.push(`attributes.status = ${quoteFilterValue(f.status)}`);
  return clauses.join(" AND ");
}
