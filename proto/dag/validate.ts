/**
 * @module
 * Validation of DAG documents: every problem at once, each with a path and a readable message.
 *
 * Two passes: the zod schema (structure) and graph checks (semantics). The graph checks read the
 * raw document leniently, so they still run on the parts that parsed when others did not: a typo
 * in one node's `resources` does not hide a cycle elsewhere.
 *
 * Graph checks: duplicate ids, unknown nodes in `inputs`/`after`, a node depending on itself,
 * cycles (one problem per strongly connected component, at the first node on it, naming the
 * nodes in edge order: `a → b` means b depends on a), partitions over inputs that don't exist,
 * and `${params.NAME}` references to params the DAG does not declare (`params.ts`).
 */
import { parseDocument } from "yaml";
import { buildGraph, cycleIndices } from "./graph";
import { paramReferenceProblems } from "./params";
import { dagErrorMap, issuesToProblems, type Problem } from "./problems";
import { DagSchema, MAX_DAG_BYTES, MAX_NODES, type Dag } from "./schema";
import { windowRefusal } from "./windows";

export type ValidationResult = { ok: true; dag: Dag } | { ok: false; problems: Problem[] };

/**
 * Validates a DAG document that is already a JS value (e.g. a parsed JSON body).
 * On success the DAG has its defaults applied, and `experiment` defaults to the DAG's name.
 */
export function validateDag(input: unknown): ValidationResult {
  if (isRecord(input) && Array.isArray(input.nodes) && input.nodes.length > MAX_NODES) {
    // Don't spend CPU on thousands of nodes that will be refused anyway: check the rest only.
    const { nodes, ...rest } = input;
    const others = DagSchema.omit({ nodes: true }).safeParse(rest, { error: dagErrorMap });
    const problems = others.success ? [] : issuesToProblems(others.error.issues);
    problems.push({ path: "nodes", message: `at most ${MAX_NODES} nodes are allowed, got ${nodes.length}` });
    return { ok: false, problems };
  }
  const parsed = DagSchema.safeParse(input, { error: dagErrorMap });
  const problems = parsed.success ? [] : issuesToProblems(parsed.error.issues);
  problems.push(...graphProblems(input));
  if (problems.length > 0 || !parsed.success) return { ok: false, problems: sortProblems(problems) };
  const dag = parsed.data;
  return { ok: true, dag: { ...dag, experiment: dag.experiment ?? dag.name } };
}

/**
 * Parses a DAG document written as JSON or YAML (same schema) and validates it. Syntax errors
 * become one problem at the root with the line and column; documents over `MAX_DAG_BYTES` are
 * refused before parsing.
 */
export function parseDagText(text: string, format: "json" | "yaml"): ValidationResult {
  const size = utf8Length(text);
  if (size > MAX_DAG_BYTES) {
    return {
      ok: false,
      problems: [{ path: "", message: `the document is ${size} bytes; at most ${MAX_DAG_BYTES} bytes (1 MiB) are allowed` }],
    };
  }
  const doc = parseText(text, format);
  return "problem" in doc ? { ok: false, problems: [doc.problem] } : validateDag(doc.value);
}

/** Parses JSON or YAML text into a plain value, or one problem with the line and column. */
export function parseText(text: string, format: "json" | "yaml"): Parsed {
  return format === "json" ? parseJson(text) : parseYaml(text);
}

function utf8Length(text: string): number {
  if (text.length * 3 <= MAX_DAG_BYTES) return text.length; // cannot exceed: skip encoding
  return new TextEncoder().encode(text).length;
}

export type Parsed = { value: unknown } | { problem: Problem };

function parseJson(text: string): Parsed {
  try {
    return { value: JSON.parse(text) };
  } catch {
    // Engines word JSON errors differently and often omit the position: locate it ourselves.
    const { offset, reason } = locateJsonError(text);
    const { line, column } = lineColumn(text, offset);
    return { problem: { path: "", message: `invalid JSON at line ${line}, column ${column}: ${reason}` } };
  }
}

/** Finds the first syntax error of a JSON text (only called after JSON.parse failed). */
export function locateJsonError(text: string): { offset: number; reason: string } {
  const n = text.length;
  const stack: string[] = [];
  let i = 0;
  let state: "value" | "key" | "after" = "value";
  const fail = (reason: string) => ({ offset: i, reason: i >= n ? "unexpected end of input" : reason });
  for (;;) {
    skipSpace();
    const ch = text[i];
    if (state === "after") {
      const top = stack.at(-1);
      if (top === undefined) return i < n ? fail("unexpected text after the document") : { offset: n, reason: "invalid JSON" };
      if (ch === ",") {
        i++;
        state = top === "{" ? "key" : "value";
      } else if ((top === "[" && ch === "]") || (top === "{" && ch === "}")) {
        stack.pop();
        i++;
      } else return fail(`expected "," or "${top === "[" ? "]" : "}"}"`);
    } else if (state === "key") {
      if (ch !== '"') return fail("expected a property name in double quotes");
      const err = scanString();
      if (err) return fail(err);
      skipSpace();
      if (text[i] !== ":") return fail('expected ":" after the property name');
      i++;
      state = "value";
    } else if (ch === "{" || ch === "[") {
      stack.push(ch);
      i++;
      skipSpace();
      if (text[i] === (ch === "{" ? "}" : "]")) {
        stack.pop();
        i++;
        state = "after";
      } else state = ch === "{" ? "key" : "value";
    } else if (ch === '"') {
      const err = scanString();
      if (err) return fail(err);
      state = "after";
    } else {
      const m = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null/y;
      m.lastIndex = i;
      if (!m.exec(text)) return fail("expected a value");
      i = m.lastIndex;
      state = "after";
    }
  }

  function skipSpace(): void {
    while (i < n && (text[i] === " " || text[i] === "\t" || text[i] === "\n" || text[i] === "\r")) i++;
  }

  function scanString(): string | undefined {
    i++; // opening quote
    for (; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c === 34) {
        i++;
        return undefined;
      }
      if (c < 32) return "control character in a string";
      if (c === 92) {
        const e = text[i + 1];
        if (e === "u" && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) i += 5;
        else if (e !== undefined && '"\\/bfnrt'.includes(e)) i++;
        else return "invalid escape in a string";
      }
    }
    return "unterminated string";
  }
}

function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let start = 0;
  for (let i = text.indexOf("\n"); i !== -1 && i < offset; i = text.indexOf("\n", i + 1)) {
    line++;
    start = i + 1;
  }
  return { line, column: offset - start + 1 };
}

function parseYaml(text: string): Parsed {
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  const err = doc.errors[0];
  if (err) {
    const { line, column } = lineColumn(text, err.pos[0]);
    const reason = err.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
    return { problem: { path: "", message: `invalid YAML at line ${line}, column ${column}: ${reason}` } };
  }
  try {
    // maxAliasCount bounds alias expansion ("billion laughs").
    return { value: doc.toJS({ maxAliasCount: 100 }) };
  } catch (e) {
    return { problem: { path: "", message: `invalid YAML: ${e instanceof Error ? e.message : String(e)}` } };
  }
}

// ---------------------------------------------------------------------------------------------
// Graph checks on the raw document.

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** What the graph checks need from one node, read leniently from the raw document. */
interface NodeView {
  id: string | undefined;
  /** Referenced node ids with the path of each reference. */
  refs: { id: string; path: string }[];
  /** Input names, or undefined when `inputs` is not an object. */
  inputNames: string[] | undefined;
  /** Windowed inputs whose source gives no arrival time per item (`windows.ts` windowRefusal). */
  windowProblems: { path: string; message: string }[];
  partitionInput: string | undefined;
}

function viewOf(raw: unknown): NodeView {
  const node = isRecord(raw) ? raw : {};
  const refs: NodeView["refs"] = [];
  const windowProblems: NodeView["windowProblems"] = [];
  const inputs = isRecord(node.inputs) ? node.inputs : undefined;
  if (inputs) {
    for (const [name, ref] of Object.entries(inputs)) {
      if (isRecord(ref) && typeof ref.node === "string") refs.push({ id: ref.node, path: key("inputs", name) });
      const refused = isRecord(ref) && ref.window !== undefined ? windowRefusal(ref) : undefined;
      if (refused) windowProblems.push({ path: `${key("inputs", name)}.window`, message: refused });
    }
  }
  if (Array.isArray(node.after)) {
    node.after.forEach((id, i) => {
      if (typeof id === "string") refs.push({ id, path: `after[${i}]` });
    });
  }
  const partition = isRecord(node.partition) ? node.partition : undefined;
  return {
    id: typeof node.id === "string" ? node.id : undefined,
    refs,
    windowProblems,
    inputNames: inputs ? Object.keys(inputs) : node.inputs === undefined ? [] : undefined,
    partitionInput: typeof partition?.input === "string" ? partition.input : undefined,
  };
}

function key(parent: string, name: string): string {
  return /^[A-Za-z_][A-Za-z0-9_-]*$/.test(name) ? `${parent}.${name}` : `${parent}[${JSON.stringify(name)}]`;
}

function graphProblems(input: unknown): Problem[] {
  if (!isRecord(input) || !Array.isArray(input.nodes)) return [];
  const views = input.nodes.map(viewOf);
  const problems: Problem[] = paramReferenceProblems(input, key);
  const firstIndex = new Map<string, number>();
  views.forEach((v, i) => {
    if (v.id === undefined) return;
    const first = firstIndex.get(v.id);
    if (first === undefined) firstIndex.set(v.id, i);
    else problems.push({ path: `nodes[${i}].id`, message: `duplicate id ${JSON.stringify(v.id)} (also nodes[${first}])` });
  });

  views.forEach((v, i) => {
    for (const w of v.windowProblems) problems.push({ path: `nodes[${i}].${w.path}`, message: w.message });
    for (const ref of v.refs) {
      if (!firstIndex.has(ref.id)) {
        problems.push({ path: `nodes[${i}].${ref.path}`, message: `unknown node ${JSON.stringify(ref.id)}` });
      } else if (ref.id === v.id) {
        problems.push({ path: `nodes[${i}].${ref.path}`, message: `node ${JSON.stringify(v.id)} depends on itself` });
      }
    }
    if (v.partitionInput !== undefined && v.inputNames && !v.inputNames.includes(v.partitionInput)) {
      const known = v.inputNames.length > 0 ? `inputs: ${v.inputNames.join(", ")}` : "the node has no inputs";
      problems.push({
        path: `nodes[${i}].partition.input`,
        message: `no input named ${JSON.stringify(v.partitionInput)} (${known})`,
      });
    }
  });

  // Nodes without a usable id get a placeholder no reference can match.
  const g = buildGraph(
    views.map((v, i) => v.id ?? `\u0000${i}`),
    views.map((v) => v.refs.map((r) => r.id)),
  );
  for (const cycle of cycleIndices(g)) {
    if (cycle.length === 1) continue; // reported above as "depends on itself"
    const names = [...cycle, cycle[0]!].map((i) => g.ids[i]!);
    problems.push({ path: `nodes[${cycle[0]}]`, message: `cycle: ${names.join(" → ")}` });
  }
  return problems;
}

/** Document order: root problems first, then by node index, keeping each node's order. */
function sortProblems(problems: Problem[]): Problem[] {
  const rank = (p: Problem) => {
    const m = /^nodes\[(\d+)\]/.exec(p.path);
    return m ? Number(m[1]) : -1;
  };
  return problems
    .map((p, i) => ({ p, i, r: rank(p) }))
    .sort((a, b) => a.r - b.r || a.i - b.i)
    .map((x) => x.p);
}
