/**
 * The partition editor's model, apart from its form: which kind of hash key a document holds and
 * the key a chosen kind writes (proto/dag/schema.ts `HashKeySchema`: `path`, `basename`, `stem`,
 * `{regex}`, `{metadata: "<field>"}`), and what a regex partition is matched against (the path,
 * or a metadata field: `metadata`). The document keeps whatever is typed; the DAG schema judges it.
 */
import { isObject, type Json } from "./document";

export const HASH_KEY_KINDS = [
  ["path", "the file's relative path"],
  ["basename", "its name"],
  ["stem", "its name without extension"],
  ["regex", "a regex's capture group of its path"],
  ["metadata", "a field of its metadata"],
] as const;
export type HashKeyKind = (typeof HASH_KEY_KINDS)[number][0];

/** The kind of a hash partition's `key` (absent: `path`, the schema's default). */
export function hashKeyKind(key: Json | undefined): HashKeyKind {
  if (key === "basename" || key === "stem") return key;
  if (isObject(key) && "regex" in key) return "regex";
  if (isObject(key) && "metadata" in key) return "metadata";
  return "path";
}

/** The `key` to write for `kind`, keeping what the current key holds of it (`undefined`: the default, `path`). */
export function hashKeyFor(kind: HashKeyKind, current: Json | undefined): Json | undefined {
  switch (kind) {
    case "path":
      return undefined;
    case "basename":
    case "stem":
      return kind;
    case "regex":
      return { regex: isObject(current) && typeof current.regex === "string" ? current.regex : "(.*)" };
    case "metadata":
      return { metadata: isObject(current) && typeof current.metadata === "string" ? current.metadata : "" };
  }
}

/** What a regex partition's pattern is matched against: the object's path, or a metadata field. */
export const regexTarget = (partition: Readonly<Record<string, Json>>): "path" | "metadata" => (partition.metadata !== undefined ? "metadata" : "path");
