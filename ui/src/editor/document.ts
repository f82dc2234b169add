/**
 * The DAG document being edited, and every edit the editor makes to it, as pure functions from a
 * document to a new one. The document is the source of truth (STYLE.md §7): the graph is drawn
 * from it, the side panel's fields write into it, and it is what is validated, saved and exported.
 *
 * While a person types it may be invalid (a step without a project, a parallelism of "abc"): it is
 * kept as plain JSON values, and `proto/dag`'s validation says what is wrong and where.
 */

/** A plain JSON object (a DAG, a step, a project…). */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };
export type Path = readonly (string | number)[];

/** A DAG document; only `nodes` is assumed to be a list (imports that lack one get an empty one). */
export interface DagDoc extends JsonObject {
  nodes: JsonObject[];
}

export function emptyDag(name = ""): DagDoc {
  return { name, params: {}, nodes: [] };
}

/** A document read from elsewhere (an import, the API), made editable. */
export function asDagDoc(value: unknown): DagDoc {
  const doc = (isObject(value) ? structuredClone(value) : {}) as JsonObject;
  const nodes = Array.isArray(doc.nodes) ? doc.nodes.filter(isObject) : [];
  return { ...doc, nodes } as DagDoc;
}

export function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export const stepIdOf = (step: JsonObject | undefined): string => (typeof step?.id === "string" ? step.id : "");

/**
 * Sets the value at `path` (undefined removes it), returning a new document. Objects left empty by a
 * removal are removed too (a step without resources has no `resources: {}`), but never `nodes`.
 */
export function setIn<T extends JsonObject>(root: T, path: Path, value: Json | undefined): T {
  const [key, ...rest] = path;
  if (key === undefined) return root;
  const copy: JsonObject | Json[] = Array.isArray(root) ? [...root] : { ...root };
  const current = (copy as Record<string | number, Json>)[key];
  const next = rest.length === 0 ? value : setIn((isObject(current) || Array.isArray(current) ? current : typeof rest[0] === "number" ? [] : {}) as JsonObject, rest, value);
  const prunable = next === undefined || (isObject(next) && Object.keys(next).length === 0 && rest.length > 0);
  if (prunable && !Array.isArray(copy)) delete copy[key as string];
  else (copy as Record<string | number, Json | undefined>)[key] = next;
  return copy as T;
}

export function getIn(root: Json | undefined, path: Path): Json | undefined {
  let at: Json | undefined = root;
  for (const key of path) {
    if (at === null || typeof at !== "object") return undefined;
    at = (at as Record<string | number, Json>)[key];
  }
  return at;
}

/** An id no step has yet: `step-1`, `step-2`… */
export function freshStepId(doc: DagDoc, base = "step"): string {
  const taken = new Set(doc.nodes.map(stepIdOf));
  for (let i = 1; ; i++) if (!taken.has(`${base}-${i}`)) return `${base}-${i}`;
}

/** A new step at the end. The project is what the palette item says (a local path or a git URI). */
export function addStep(doc: DagDoc, step: JsonObject): DagDoc {
  return { ...doc, nodes: [...doc.nodes, step] };
}

/** Removes a step and every reference to it (its downstream steps' inputs and `after`). */
export function removeStep(doc: DagDoc, index: number): DagDoc {
  const id = stepIdOf(doc.nodes[index]);
  const nodes = doc.nodes.filter((_, i) => i !== index).map((n) => withoutReferencesTo(n, id));
  return { ...doc, nodes };
}

function withoutReferencesTo(step: JsonObject, id: string): JsonObject {
  let out = step;
  if (isObject(step.inputs)) {
    for (const [name, ref] of Object.entries(step.inputs)) if (isObject(ref) && ref.node === id) out = setIn(out, ["inputs", name], undefined);
  }
  if (Array.isArray(step.after) && step.after.includes(id)) {
    const after = step.after.filter((a) => a !== id);
    out = setIn(out, ["after"], after.length ? after : undefined);
  }
  return out;
}

/**
 * Renames a step, and the references to it with it: `inputs.{x}.node` and `after` of the others
 * follow, so a rename never breaks an edge.
 */
export function renameStep(doc: DagDoc, index: number, newId: string): DagDoc {
  const oldId = stepIdOf(doc.nodes[index]);
  const nodes = doc.nodes.map((n, i) => {
    if (i === index) return { ...n, id: newId };
    if (oldId === "") return n;
    let out = n;
    if (isObject(n.inputs)) {
      for (const [name, ref] of Object.entries(n.inputs)) if (isObject(ref) && ref.node === oldId) out = setIn(out, ["inputs", name, "node"], newId);
    }
    if (Array.isArray(n.after)) out = { ...out, after: n.after.map((a) => (a === oldId ? newId : a)) };
    return out;
  });
  return { ...doc, nodes };
}

/** An input name from a step id: input names start with a letter or "_" (ids may start with a digit). */
export function inputNameFor(id: string, taken: readonly string[]): string {
  const base = /^[A-Za-z_]/.test(id) ? id.replace(/[^A-Za-z0-9_-]/g, "_") : `_${id.replace(/[^A-Za-z0-9_-]/g, "_")}`;
  if (!taken.includes(base)) return base;
  for (let i = 2; ; i++) if (!taken.includes(`${base}${i}`)) return `${base}${i}`;
}

/**
 * Connects an upstream step to a step's input: `inputName` names an existing input (its source is
 * replaced), or, when absent, a new input is named after the upstream step.
 */
export function connect(doc: DagDoc, upstreamIndex: number, targetIndex: number, inputName?: string): DagDoc {
  const upstream = stepIdOf(doc.nodes[upstreamIndex]);
  const target = doc.nodes[targetIndex];
  if (!target || upstreamIndex === targetIndex) return doc;
  const inputs = isObject(target.inputs) ? target.inputs : {};
  if (!inputName && Object.values(inputs).some((ref) => isObject(ref) && ref.node === upstream)) return doc;
  const name = inputName ?? inputNameFor(upstream, Object.keys(inputs));
  const previous = inputs[name];
  const ref: JsonObject = { node: upstream, ...(isObject(previous) && typeof previous.path === "string" ? { path: previous.path } : {}) };
  return setIn(doc, ["nodes", targetIndex, "inputs", name], ref);
}

/** Renames a key of an object in place of order (parameters, params, inputs, labels). */
export function renameKey(obj: JsonObject, from: string, to: string): JsonObject {
  if (from === to || (to in obj && to !== from)) return obj;
  return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k === from ? to : k, v]));
}

/**
 * What a person typed, as the value the document keeps: `true`/`false` and numbers written as
 * JSON writes them become booleans and numbers (YAML reads them so too); anything else stays text.
 */
export function scalarFromText(text: string): string | number | boolean {
  if (text === "true") return true;
  if (text === "false") return false;
  if (text.trim() !== "" && String(Number(text)) === text) return Number(text);
  return text;
}

/** A number field: an integer written as such becomes one; anything else is kept for validation to name. */
export function numberFromText(text: string): number | string | undefined {
  if (text.trim() === "") return undefined;
  return String(Number(text)) === text.trim() ? Number(text) : text;
}
