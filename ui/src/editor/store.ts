/**
 * The editor's state: the document, its undo and redo history, and what is only the view's (where
 * each step is drawn, which one is selected). Every change to the document goes through `edit`,
 * which keeps the history; the graph and the panels read the document and never hold a copy.
 *
 * Typing into one field makes one history entry, not one per key: edits with the same `key` within
 * a second of each other are merged.
 */
import { create } from "zustand";
import type { Problem } from "../../../proto/dag";
import { validateDag } from "../../../proto/dag";
import { asDagDoc, type DagDoc, emptyDag, stepIdOf } from "./document";

export interface XY {
  x: number;
  y: number;
}

/** The DAG version the editor opened: what a save compares against to notice someone else's save. */
export interface Base {
  name: string;
  version: number;
  latestVersion: number;
}

const MERGE_MS = 1000;
const MAX_HISTORY = 200;

export interface EditorState {
  doc: DagDoc;
  past: DagDoc[];
  future: DagDoc[];
  problems: Problem[];
  /** Drawn positions by graph node id (`graphId`); a view of the document, not part of it. */
  positions: Record<string, XY>;
  /** The selected step's index in `doc.nodes`, or null: the DAG's own fields are shown. */
  selected: number | null;
  base: Base | null;
  /** Bumped when the layout must be computed again (opened, imported, asked for). */
  layoutRequest: number;
  lastEdit: { key: string; at: number } | null;

  open(doc: unknown, base: Base | null): void;
  /** Applies an edit; `key` names the field typed into, so one word typed is one undo step. */
  edit(change: (doc: DagDoc) => DagDoc, key?: string): void;
  /** Replaces the whole document (an import), as one undo step, and lays it out anew. */
  replace(doc: unknown): void;
  undo(): void;
  redo(): void;
  select(index: number | null): void;
  setPositions(positions: Record<string, XY>): void;
  requestLayout(): void;
  setBase(base: Base): void;
}

export const useEditor = create<EditorState>((set, get) => ({
  doc: emptyDag(),
  past: [],
  future: [],
  problems: [],
  positions: {},
  selected: null,
  base: null,
  layoutRequest: 0,
  lastEdit: null,

  open(value, base) {
    const doc = asDagDoc(value);
    set({ doc, past: [], future: [], problems: problemsOf(doc), positions: {}, selected: null, base, layoutRequest: get().layoutRequest + 1, lastEdit: null });
  },

  edit(change, key) {
    const { doc, past, lastEdit } = get();
    const next = change(doc);
    if (next === doc) return;
    const now = Date.now();
    const merge = key !== undefined && lastEdit?.key === key && now - lastEdit.at < MERGE_MS;
    set({
      doc: next,
      past: merge ? past : [...past, doc].slice(-MAX_HISTORY),
      future: [],
      problems: problemsOf(next),
      positions: followRenames(doc, next, get().positions),
      lastEdit: key === undefined ? null : { key, at: now },
    });
  },

  replace(value) {
    get().edit(() => asDagDoc(value));
    set({ selected: null, positions: {}, layoutRequest: get().layoutRequest + 1 });
  },

  undo() {
    const { past, doc, future } = get();
    const previous = past.at(-1);
    if (!previous) return;
    set({ doc: previous, past: past.slice(0, -1), future: [doc, ...future], problems: problemsOf(previous), lastEdit: null, selected: clampSelection(get().selected, previous) });
  },

  redo() {
    const { past, doc, future } = get();
    const next = future[0];
    if (!next) return;
    set({ doc: next, past: [...past, doc], future: future.slice(1), problems: problemsOf(next), lastEdit: null, selected: clampSelection(get().selected, next) });
  },

  select: (selected) => set({ selected }),
  setPositions: (positions) => set({ positions: { ...get().positions, ...positions } }),
  requestLayout: () => set({ layoutRequest: get().layoutRequest + 1 }),
  setBase: (base) => set({ base }),
}));

/** Validation by the same schema and rules as the API (`proto/dag`), on every change. */
export function problemsOf(doc: DagDoc): Problem[] {
  const result = validateDag(doc);
  return result.ok ? [] : result.problems;
}

const clampSelection = (selected: number | null, doc: DagDoc) => (selected !== null && selected < doc.nodes.length ? selected : null);

/**
 * A step's id in the graph: its own id while that is unique and not empty, else its place in the
 * list (the graph needs unique ids even while the document has duplicates being typed).
 */
export function graphId(doc: DagDoc, index: number): string {
  const id = stepIdOf(doc.nodes[index]);
  const unique = id !== "" && doc.nodes.filter((n) => stepIdOf(n) === id).length === 1;
  return unique ? `step:${id}` : `index:${index}`;
}

/** Keeps a renamed step where it was drawn: its position moves to its new graph id. */
function followRenames(before: DagDoc, after: DagDoc, positions: Record<string, XY>): Record<string, XY> {
  if (before.nodes.length !== after.nodes.length) return positions;
  let out = positions;
  for (let i = 0; i < after.nodes.length; i++) {
    const from = graphId(before, i);
    const to = graphId(after, i);
    if (from !== to && positions[from]) out = { ...out, [to]: positions[from] };
  }
  return out;
}

/** The problems of one step (`nodes[i]…`), with the rest of their path (`.project.uri`). */
export function stepProblems(problems: readonly Problem[], index: number): { field: string; message: string }[] {
  const prefix = `nodes[${index}]`;
  return problems.filter((p) => p.path === prefix || p.path.startsWith(`${prefix}.`) || p.path.startsWith(`${prefix}[`)).map((p) => ({ field: p.path.slice(prefix.length), message: p.message }));
}

/** The problems that are about the DAG itself, not one of its steps. */
export const dagProblems = (problems: readonly Problem[]) => problems.filter((p) => !/^nodes\[\d+\]/.test(p.path));
