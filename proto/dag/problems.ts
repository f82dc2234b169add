/**
 * @module
 * Problems: a path into the document plus a message a person understands.
 *
 * Paths use dots for keys and `[i]` for indices (`nodes[3].inputs.images`); keys that are not
 * identifiers are quoted (`params["batch size"]`); the document root is "".
 * Zod issues are turned into problems here: unknown fields get one problem each (with a
 * "did you mean" hint), union failures report the branch that fits the value best.
 */
import type { z } from "zod";

/** One thing wrong with a DAG document. */
export type Problem = { path: string; message: string };

type Issue = z.core.$ZodIssue;
type RawIssue = z.core.$ZodRawIssue;

const IDENT = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** Formats a path such as `["nodes", 3, "inputs", "images"]` as `nodes[3].inputs.images`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else {
      const key = String(seg);
      if (IDENT.test(key)) out += out === "" ? key : `.${key}`;
      else out += `[${JSON.stringify(key)}]`;
    }
  }
  return out;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  switch (typeof value) {
    case "string":
      return `a string (${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)})`;
    case "number":
      return Number.isInteger(value) ? `the number ${value}` : `the number ${value}`;
    case "boolean":
      return `${value}`;
    case "object":
      return "an object";
    default:
      return typeof value;
  }
}

const EXPECTED: Record<string, string> = {
  string: "a string",
  number: "a number",
  int: "an integer",
  boolean: "true or false",
  object: "an object",
  record: "an object",
  array: "a list",
};

/**
 * Error map passed to `safeParse`: default messages for issues whose schema gives none.
 * (Messages set on a schema take precedence over this map.)
 */
export function dagErrorMap(iss: RawIssue): string | undefined {
  switch (iss.code) {
    case "unrecognized_keys": {
      // Remember which keys the object accepts, for "did you mean" in `issuesToProblems`; the
      // finalized issue keeps the same `keys` array, so it is the lookup key.
      const shape = (iss.inst as { _zod?: { def?: { shape?: object } } } | undefined)?._zod?.def?.shape;
      if (shape) KNOWN_KEYS.set(iss.keys, Object.keys(shape));
      return `unknown field(s) ${iss.keys.map((k) => JSON.stringify(k)).join(", ")}`;
    }
    case "invalid_type":
      if (iss.input === undefined) return "missing required field";
      return `expected ${EXPECTED[iss.expected] ?? iss.expected}, got ${describe(iss.input)}`;
    case "too_small":
      if (iss.origin === "string") return "must not be empty";
      if (iss.origin === "array") return `expected at least ${iss.minimum} item(s)`;
      return `expected a number ${iss.inclusive ? "≥" : ">"} ${iss.minimum}`;
    case "too_big":
      if (iss.origin === "string") return `must be at most ${iss.maximum} characters`;
      if (iss.origin === "array") return `expected at most ${iss.maximum} items`;
      return `expected a number ${iss.inclusive ? "≤" : "<"} ${iss.maximum}`;
    case "invalid_value":
      return `expected ${oneOf(iss.values)}, got ${JSON.stringify(iss.input)}`;
    case "invalid_union": {
      const disc = iss.discriminator;
      const options = iss.options as readonly unknown[] | undefined;
      if (disc !== undefined && options) {
        const input = iss.input as Record<string, unknown> | undefined;
        const got = input && typeof input === "object" ? input[disc] : undefined;
        if (got === undefined) return `missing required field; expected ${oneOf(options)}`;
        return `expected ${oneOf(options)}, got ${JSON.stringify(got)}`;
      }
      return undefined;
    }
    case "invalid_format":
      return iss.pattern ? `does not match ${iss.pattern}` : `invalid ${iss.format}`;
    default:
      return undefined;
  }
}

function oneOf(values: readonly unknown[]): string {
  const shown = values.map((v) => JSON.stringify(v));
  return shown.length === 1 ? shown[0]! : `one of ${shown.join(", ")}`;
}

/** Converts zod issues (from a parse with `dagErrorMap`) into problems. */
export function issuesToProblems(issues: readonly Issue[], base: readonly PropertyKey[] = []): Problem[] {
  const out: Problem[] = [];
  for (const iss of issues) addIssue(out, iss, base);
  return out;
}

function addIssue(out: Problem[], iss: Issue, base: readonly PropertyKey[]): void {
  const path = [...base, ...iss.path];
  switch (iss.code) {
    case "unrecognized_keys": {
      const known = knownKeys(iss);
      for (const key of iss.keys) {
        const hint = suggest(key, known);
        out.push({
          path: formatPath([...path, key]),
          message: `unknown field ${JSON.stringify(key)}${hint ? ` (did you mean ${JSON.stringify(hint)}?)` : ""}`,
        });
      }
      return;
    }
    case "invalid_key": {
      const inner = iss.issues[0]?.message ?? "invalid name";
      out.push({ path: formatPath(path), message: `invalid name ${JSON.stringify(String(path.at(-1)))}: ${inner}` });
      return;
    }
    case "invalid_union": {
      const branch = bestBranch(iss.errors);
      if (branch) {
        for (const sub of branch) addIssue(out, sub, path);
        return;
      }
      out.push({ path: formatPath(path), message: iss.message });
      return;
    }
    default:
      out.push({ path: formatPath(path), message: iss.message });
  }
}

/**
 * The union branch to report: drop branches rejecting the value's type outright (so `{}` for a
 * cluster selector reports the selector's own problem, not "expected a string"), then take the
 * one with the fewest issues if there is exactly one. Otherwise the union's own message is clearer.
 */
function bestBranch(branches: readonly (readonly Issue[])[]): readonly Issue[] | undefined {
  const typed = branches.filter((b) => !b.some((i) => i.code === "invalid_type" && i.path.length === 0));
  if (typed.length === 0) return undefined;
  if (typed.length === 1) return typed[0];
  const min = Math.min(...typed.map((b) => b.length));
  const best = typed.filter((b) => b.length === min);
  return best.length === 1 ? best[0] : undefined;
}

const KNOWN_KEYS = new WeakMap<readonly string[], string[]>();

/** Keys the strict object would have accepted (for "did you mean"). */
function knownKeys(iss: z.core.$ZodIssueUnrecognizedKeys): string[] {
  return KNOWN_KEYS.get(iss.keys) ?? [];
}

/** Closest known key within an edit distance of 2 (or a case-insensitive match). */
export function suggest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDist = 3;
  for (const k of known) {
    if (k.toLowerCase() === key.toLowerCase()) return k;
    const d = editDistance(key, k, bestDist);
    if (d < bestDist) {
      bestDist = d;
      best = k;
    }
  }
  return best;
}

function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) >= limit) return limit;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}
