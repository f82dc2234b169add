/**
 * @module
 * Content-addressed image names. An image's tag is a hash of what defines it — for an
 * environment image its base, its env files in canonical form and the recipe's version; for a
 * project image the image it starts from and the project at its commit (or the digest of its
 * files) — so the same definition always names the same image, anywhere: an agent asks the
 * registry for the tag and builds only when it is missing. Runtime-free (WebCrypto's SHA-256).
 */

/** JSON with object keys sorted at every level: one text per value. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}

export async function sha256Hex(data: string | Uint8Array): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Hex characters of the hash kept in a tag (128 bits). */
export const TAG_HEX = 32;

/** The tag of an image defined by `identity`. */
export async function contentTag(identity: unknown): Promise<string> {
  return (await sha256Hex(canonicalJson(identity))).slice(0, TAG_HEX);
}

/** A project's files (path, mode, content digest): the digest of a project that is not in git. */
export interface FileEntry {
  path: string;
  /** true for an executable file. */
  executable: boolean;
  sha256: string;
}

/** The digest of a set of files, whatever order they were listed in. */
export async function filesDigest(entries: readonly FileEntry[]): Promise<string> {
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return `sha256:${await sha256Hex(sorted.map((e) => `${e.executable ? "755" : "644"} ${e.sha256} ${e.path}`).join("\n"))}`;
}

/** Where built images go: a registry (host[:port], maybe with a path) and a repository prefix; registry "" keeps them local (`localhost/`). */
export interface ImageTarget {
  registry: string;
  prefix: string;
}

const join = (...parts: string[]) =>
  parts
    .map((p) => p.replace(/^\/+|\/+$/g, ""))
    .filter(Boolean)
    .join("/");

/** A repository name component from a project name (lower case, [a-z0-9._-], not empty). */
export function repositoryComponent(name: string | null | undefined): string {
  const s = (name ?? "")
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, "-")
    .replace(/^[._-]+|[._-]+$/g, "")
    .replace(/[._-]{2,}/g, "-")
    .slice(0, 60)
    .replace(/[._-]+$/, "");
  return s || "project";
}

/** The environment image `<registry>/<prefix>/env:<tag>`. */
export function envImageRef(target: ImageTarget, tag: string): string {
  return `${join(target.registry || "localhost", target.prefix, "env")}:${tag}`;
}

/** The project image `<registry>/<prefix>/project-<name>:<tag>`. */
export function projectImageRef(target: ImageTarget, projectName: string | null, tag: string): string {
  return `${join(target.registry || "localhost", target.prefix, `project-${repositoryComponent(projectName)}`)}:${tag}`;
}

/** `host[:port]/path/name:tag[@digest]` split (a reference without a registry host is refused: ours always have one). */
export function splitImageRef(ref: string): { registry: string; repository: string; tag: string | null; digest: string | null } {
  const at = ref.indexOf("@");
  const digest = at >= 0 ? ref.slice(at + 1) : null;
  const named = at >= 0 ? ref.slice(0, at) : ref;
  const slash = named.indexOf("/");
  if (slash < 0) throw new Error(`image reference ${ref} has no registry host`);
  const registry = named.slice(0, slash);
  const rest = named.slice(slash + 1);
  const colon = rest.lastIndexOf(":");
  return colon >= 0 ? { registry, repository: rest.slice(0, colon), tag: rest.slice(colon + 1), digest } : { registry, repository: rest, tag: null, digest };
}
