/**
 * @module
 * The partition manifest of a node attempt (ARCHITECTURE §6): which objects of the partitioned
 * input each partition reads. Pure: takes the input's file list (paths relative to the input's
 * folder, `/`-separated) and the node's `partition`, returns the manifest. Computed once per
 * attempt, stored as an artifact of the node's run, and each partition gets its slice.
 *
 * - no partition / `none`: one partition, unpartitioned (no nested runs), with every file;
 * - `object`: one partition per file, in path order;
 * - `directory`: one partition per top-level folder (files directly in the root are not in any);
 * - `broadcast`: `parallelism` partitions, each with every file;
 * - `hash`: `partitions` buckets, a file goes to `fnv1a32(key) % partitions`;
 * - `regex`: files whose path matches `pattern` grouped by the value of `group`, in key order.
 *
 * Items may carry the key–value metadata their upstream step attached (metadata.ts): each slice
 * holds its files' metadata, and `hash` (`key: {metadata}`) and `regex` (`metadata`) can key on a
 * field of it instead of the path. A file without that field is in no partition (as a file a
 * regex does not match): there is no key to place it by, and a catch-all partition would mix
 * unrelated items. A field's value keys as its string form (`7`, `true`, `cat`).
 *
 * @example
 * ```ts
 * const m = computeManifest({ by: "object", input: "parts" }, 1, ["b.txt", "a.txt"]);
 * // m.count === 2, m.partitions[0].files === ["a.txt"], sliceFiles(m, 0) === ["parts/a.txt"]
 * ```
 */
import type { Partition } from "../../../../proto/dag";
import { metadataKey, type Metadata } from "./metadata";

export const MANIFEST_VERSION = 1;

export interface PartitionSlice {
  index: number;
  /** What groups the files: the file (object), folder (directory), bucket number (hash), group value (regex). */
  key: string;
  /** Paths relative to `PARALLELS_INPUTS_DIR/<input>/`, sorted. */
  files: string[];
  /**
   * The metadata of those files that have any (path as in `files` → fields). Absent when none
   * has: manifests stored before metadata existed read the same.
   */
  metadata?: Record<string, Metadata>;
}

export interface Manifest {
  version: typeof MANIFEST_VERSION;
  by: Partition["by"] | "unpartitioned";
  /** The partitioned input's name (none for an unpartitioned node without one). */
  input?: string;
  count: number;
  /** True for a partitioned node: each partition is told its index and slice, and — up to the agent's limit — gets a nested MLflow run (partition-runs.ts). */
  nested: boolean;
  partitions: PartitionSlice[];
}

const byPath = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** 32-bit FNV-1a of the UTF-8 bytes: stable across runtimes, so every executor buckets alike. */
export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(s)) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

function hashKey(path: string, key: Extract<Partition, { by: "hash" }>["key"], meta: Metadata | undefined): string | undefined {
  if (typeof key === "object" && "metadata" in key) return metadataKey(meta?.[key.metadata]);
  const base = path.split("/").pop() ?? path;
  if (key === "path") return path;
  if (key === "basename") return base;
  if (key === "stem") {
    const dot = base.lastIndexOf(".");
    return dot > 0 ? base.slice(0, dot) : base;
  }
  const m = new RegExp(key.regex).exec(path);
  return m ? (m[1] ?? "") : undefined;
}

/**
 * The manifest for `partition` over `files` (relative paths). `parallelism` only matters for
 * `broadcast` (how many partitions get everything). `metadata`: the files' metadata (path →
 * fields), carried on each slice and keyed on by `hash`/`regex` with a metadata field.
 */
export function computeManifest(partition: Partition | undefined, parallelism: number, files: readonly string[], metadata?: ReadonlyMap<string, Metadata>): Manifest {
  const sorted = [...new Set(files)].sort(byPath);
  const withMetadata = (index: number, key: string, fs: string[]): PartitionSlice => {
    const slice: PartitionSlice = { index, key, files: fs };
    const own = metadata?.size ? fs.filter((f) => metadata.has(f)) : [];
    if (own.length > 0) slice.metadata = Object.fromEntries(own.map((f) => [f, metadata!.get(f)!]));
    return slice;
  };
  const make = (by: Manifest["by"], slices: { key: string; files: string[] }[], nested: boolean): Manifest => {
    const m: Manifest = {
      version: MANIFEST_VERSION,
      by,
      count: slices.length,
      nested,
      partitions: slices.map((s, index) => withMetadata(index, s.key, s.files)),
    };
    if (partition?.input !== undefined) m.input = partition.input;
    return m;
  };
  if (!partition || partition.by === "none") {
    return make(partition ? "none" : "unpartitioned", [{ key: "all", files: sorted }], false);
  }
  switch (partition.by) {
    case "object":
      return make(
        "object",
        sorted.map((f) => ({ key: f, files: [f] })),
        true,
      );
    case "directory": {
      const groups = new Map<string, string[]>();
      for (const f of sorted) {
        const i = f.indexOf("/");
        if (i <= 0) continue;
        const dir = f.slice(0, i);
        groups.set(dir, [...(groups.get(dir) ?? []), f]);
      }
      return make(
        "directory",
        [...groups].sort(([a], [b]) => byPath(a, b)).map(([key, fs]) => ({ key, files: fs })),
        true,
      );
    }
    case "broadcast":
      return make(
        "broadcast",
        Array.from({ length: parallelism }, (_, i) => ({ key: String(i), files: sorted })),
        true,
      );
    case "hash": {
      const buckets = Array.from({ length: partition.partitions }, (_, i) => ({ key: String(i), files: [] as string[] }));
      for (const f of sorted) {
        const k = hashKey(f, partition.key, metadata?.get(f));
        if (k === undefined) continue; // a {regex} key that does not match, no such metadata field: not in any bucket
        buckets[fnv1a32(k) % partition.partitions]!.files.push(f);
      }
      return make("hash", buckets, true);
    }
    case "regex": {
      const re = new RegExp(partition.pattern);
      const groupCount = (new RegExp(`${partition.pattern}|`).exec("")?.length ?? 1) - 1;
      const group = partition.group ?? (groupCount > 0 ? 1 : 0);
      const groups = new Map<string, string[]>();
      for (const f of sorted) {
        // The path, or the value of a metadata field (a file without it is left out, as a non-match).
        const subject = partition.metadata === undefined ? f : metadataKey(metadata?.get(f)?.[partition.metadata]);
        const m = subject === undefined ? null : re.exec(subject);
        if (!m) continue;
        const v = typeof group === "number" ? m[group] : m.groups?.[group];
        if (v === undefined) continue; // an optional group that did not take part
        groups.set(v, [...(groups.get(v) ?? []), f]);
      }
      return make(
        "regex",
        [...groups].sort(([a], [b]) => byPath(a, b)).map(([key, fs]) => ({ key, files: fs })),
        true,
      );
    }
  }
}

/**
 * What partition `index` finds in `PARALLELS_PARTITION_MANIFEST` (examples/wordcount/README.md):
 * a JSON list of the files it owns, relative to `PARALLELS_INPUTS_DIR` (so prefixed with the
 * input's name), `/`-separated, e.g. `["parts/part-002.txt"]`.
 */
export function sliceFiles(m: Manifest, index: number): string[] {
  const p = m.partitions[index];
  if (!p) throw new RangeError(`partition ${index} is not in a manifest of ${m.count}`);
  return p.files.map((f) => (m.input === undefined ? f : `${m.input}/${f}`));
}

/**
 * What partition `index` finds in `PARALLELS_PARTITION_METADATA`: its files' metadata, keyed by
 * the paths of {@link sliceFiles} (`{"parts/img-001.png": {"label": "cat"}}`); files without
 * metadata are not in it.
 */
export function sliceMetadata(m: Manifest, index: number): Record<string, Metadata> {
  const p = m.partitions[index];
  if (!p) throw new RangeError(`partition ${index} is not in a manifest of ${m.count}`);
  return Object.fromEntries(Object.entries(p.metadata ?? {}).map(([f, v]) => [m.input === undefined ? f : `${m.input}/${f}`, v]));
}

/** The files (relative to the partitioned input) of these partitions: what a retry of them needs of that input. */
export function itemsOf(m: Manifest, indexes: readonly number[]): Set<string> {
  const out = new Set<string>();
  for (const i of indexes) for (const f of m.partitions[i]?.files ?? []) out.add(f);
  return out;
}
