/**
 * @module
 * Key–value metadata on a step's outputs (issue 12), the pure part: the sidecar convention and
 * its checks. A step writes one JSON object per line to `$PARALLELS_METADATA_FILE` — a file in
 * its outputs folder, `.metadata.jsonl` for an unpartitioned step and `.metadata/<index>.jsonl`
 * for a partition (partitions of a local attempt share the outputs folder, so each writes its
 * own sidecar rather than one file they would overwrite) — each naming an output file and its
 * fields:
 *
 * ```json
 * {"path": "img-001.png", "metadata": {"label": "cat", "camera": "A", "score": 0.93}}
 * ```
 *
 * `path` is relative to the outputs folder (`/`-separated, a leading `./` is dropped) and must
 * name a file among the outputs; values are strings, finite numbers or booleans. A later line
 * for the same path replaces the earlier one. Sidecars are not outputs themselves: they are
 * checked when the attempt ends and stored, one per sidecar, under `parallels/metadata/` of the
 * node's run (metadata-store.ts), from where the downstream manifest takes each item's fields.
 */
import { z } from "zod";

export type MetadataValue = string | number | boolean;
export type Metadata = Record<string, MetadataValue>;

/** The sidecar of an unpartitioned step, relative to the outputs folder. */
export const METADATA_SIDECAR = ".metadata.jsonl";
/** The folder of the partitions' sidecars (`<index>.jsonl`), relative to the outputs folder. */
export const METADATA_DIR = ".metadata";
/** Limits that keep a manifest (which carries every item's fields) of a sensible size. */
export const MAX_METADATA_FIELDS = 64;
export const MAX_METADATA_VALUE_CHARS = 1024;

/** The sidecar a process writes, relative to the outputs folder: its partition's, or the step's. */
export function sidecarPath(index: number | undefined): string {
  return index === undefined ? METADATA_SIDECAR : `${METADATA_DIR}/${index}.jsonl`;
}

/** Whether an outputs-relative path is a metadata sidecar (or below the sidecars' folder), not an output. */
export function isSidecar(rel: string): boolean {
  return rel === METADATA_SIDECAR || rel.startsWith(`${METADATA_DIR}/`);
}

/** The name a sidecar is stored under in `parallels/metadata/`, or undefined when `rel` is not a valid sidecar name. */
export function storedSidecarName(rel: string): string | undefined {
  if (rel === METADATA_SIDECAR) return "step.jsonl";
  const m = /^\.metadata\/([A-Za-z0-9_-]+)\.jsonl$/.exec(rel);
  return m ? `${m[1]}.jsonl` : undefined;
}

const ValueSchema = z.union([z.string().max(MAX_METADATA_VALUE_CHARS, { error: `a value has at most ${MAX_METADATA_VALUE_CHARS} characters` }), z.number().finite(), z.boolean()], {
  error: "expected a string, number or boolean",
});

export const MetadataLineSchema = z.strictObject(
  {
    path: z.string({ error: "expected the output's path as a string" }).min(1, { error: "must not be empty" }),
    metadata: z
      .record(z.string().min(1, { error: "a field name must not be empty" }).max(200, { error: "a field name has at most 200 characters" }), ValueSchema, {
        error: "expected an object of field → string, number or boolean",
      })
      .refine((m) => Object.keys(m).length <= MAX_METADATA_FIELDS, { error: `at most ${MAX_METADATA_FIELDS} fields per file` }),
  },
  { error: 'expected an object {"path": "<output>", "metadata": {…}}' },
);

export type SidecarResult = { ok: true; entries: Map<string, Metadata> } | { ok: false; problem: string };

/**
 * Checks a sidecar's text (`name`: its outputs-relative path, for messages) against the outputs
 * (`/`-separated, relative): the first problem names the sidecar, the line and the field.
 */
export function parseSidecar(name: string, text: string, outputs: ReadonlySet<string>): SidecarResult {
  const entries = new Map<string, Metadata>();
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === "") continue;
    const at = `${name} line ${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      return { ok: false, problem: `${at}: not JSON (${(e as Error).message})` };
    }
    const r = MetadataLineSchema.safeParse(value);
    if (!r.success) {
      const issue = r.error.issues[0]!;
      const field = issue.path.length > 0 ? issue.path.join(".") : "line";
      const message = issue.code === "unrecognized_keys" ? `unknown field(s) ${issue.keys.map((k) => `"${k}"`).join(", ")} (expected {"path", "metadata"})` : issue.message;
      return { ok: false, problem: `${at}: ${field}: ${message}` };
    }
    const path = r.data.path.replace(/^(\.\/)+/, "");
    if (!outputs.has(path)) return { ok: false, problem: `${at}: path: "${r.data.path}" is not among the step's outputs` };
    entries.set(path, r.data.metadata);
  }
  return { ok: true, entries };
}

/** Sidecar text of checked entries (what is stored): one `{"path","metadata"}` per line. */
export function formatSidecar(entries: ReadonlyMap<string, Metadata>): string {
  return [...entries].map(([path, metadata]) => `${JSON.stringify({ path, metadata })}\n`).join("");
}

/**
 * A stored sidecar read back for a downstream input: entries as written, lines that do not parse
 * skipped (they were checked when stored; this guards against hand-made artifacts).
 */
export function readStoredSidecar(text: string): [string, Metadata][] {
  const out: [string, Metadata][] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    try {
      const r = MetadataLineSchema.safeParse(JSON.parse(line));
      if (r.success) out.push([r.data.path, r.data.metadata]);
    } catch {
      // not JSON: skipped
    }
  }
  return out;
}

/**
 * Re-roots output paths to an input's folder: an input of `path: "sub"` sees `sub/a.png` as
 * `a.png`; a `path` naming one file sees it under its base name. Undefined: not in the input.
 */
export function underInputRoot(outputPath: string, root: string): string | undefined {
  if (!root) return outputPath;
  if (outputPath.startsWith(`${root}/`)) return outputPath.slice(root.length + 1);
  if (outputPath === root) return root.split("/").at(-1);
  return undefined;
}

/** The string a metadata value keys a partition by (`7`, `true`, `cat`); undefined when absent. */
export function metadataKey(v: MetadataValue | undefined): string | undefined {
  return v === undefined ? undefined : String(v);
}
