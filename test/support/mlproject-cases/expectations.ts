/**
 * @module
 * A case's `expect` block: which keys were evaluated (an unevaluated one fails the case, so a key
 * the runner does not know is never passed silently), MLflow errors, and engine values turned into
 * the case file's JSON for comparison.
 */
import { expect } from "vitest";
import { isMLprojectError, type MLprojectError, mlflowText, PyTuple, type PyValue } from "../../../proto/mlproject/index.js";
import { pyTypeName } from "../../../proto/mlproject/pytypes.js";
import type { Case, Sandbox } from "./case.js";

export class Expectations {
  private readonly seen = new Set<string>();
  constructor(
    private readonly c: Case,
    private readonly sb: Sandbox,
  ) {}
  has(key: string): boolean {
    return key in this.c.expect;
  }
  /** The expected value, placeholders filled in; marks the key as evaluated. */
  get(key: string): unknown {
    this.seen.add(key);
    return this.sb.subst(this.c.expect[key]);
  }
  done() {
    const left = Object.keys(this.c.expect).filter((k) => !this.seen.has(k));
    expect(left, `expectation keys not evaluated for kind ${this.c.kind} (unknown to the runner, or the project or entry point they need did not load)`).toEqual([]);
    expect(this.seen.size, "the case expects nothing").toBeGreaterThan(0);
  }
}

/**
 * `run` must fail with the engine's error, carrying MLflow's text: `error` (substring),
 * `error_full`/`error_full_example` (whole) are compared with `mlflowMessage`, or the message when
 * the engine does not know MLflow's wording.
 */
export async function expectError(x: Expectations, run: () => unknown): Promise<MLprojectError> {
  let err: unknown;
  try {
    await run();
  } catch (e) {
    err = e;
  }
  expect(err, "expected an error").toBeDefined();
  if (!isMLprojectError(err)) throw err;
  const text = mlflowText(err);
  expect(text).toContain(x.get("error"));
  if (x.has("error_type")) expect(err.mlflowType).toBe(x.get("error_type"));
  if (x.has("error_full")) expect(text).toBe(x.get("error_full"));
  if (x.has("error_full_example")) expect(text).toBe(x.get("error_full_example"));
  return err;
}

/**
 * A PyValue as the case file holds it (ints bigint, floats number, dicts objects with str keys;
 * tuples are lists, as Python's json writes them). Values JSON cannot hold (dates, bytes, sets)
 * cannot be compared: the case fails rather than compare something else.
 */
export function caseJson(v: PyValue): unknown {
  if (v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) return v.map(caseJson);
  if (v instanceof PyTuple) return v.items.map(caseJson);
  if (v instanceof Map) {
    return Object.fromEntries([...v].map(([k, x]) => [typeof k === "string" ? k : String(caseJson(k)), caseJson(x)]));
  }
  throw new Error(`a ${pyTypeName(v)} value cannot be compared with the case file's JSON`);
}
