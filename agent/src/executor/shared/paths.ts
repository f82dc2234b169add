/**
 * @module
 * Local paths a work message names — project folders, `{uri}` inputs, `file:` path parameters —
 * are read only below the executor's projects root: each must resolve (symlinks followed) under
 * it and be a regular file or a folder. Anything else fails the attempt with a clear message.
 */
import { realpathSync } from "node:fs";
import type { Stats } from "node:fs";
import { cp, lstat, realpath, stat } from "node:fs/promises";
import { isAbsolute, resolve, sep } from "node:path";
import { AttemptFailure } from "./errors";

export type PathKind = "dir" | "file-or-dir";

/** The projects root with its symlinks resolved (as given when it does not exist). */
export function realRoot(root: string): string {
  try {
    return realpathSync(root);
  } catch {
    return resolve(root);
  }
}

export function isUnder(root: string, path: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
}

/**
 * `path` (absolute, or relative to `root`) resolved with its symlinks; it must be below `root`
 * and be a folder (`dir`) or a regular file or folder (`file-or-dir`). `what` starts the message.
 */
export async function resolveUnderRoot(root: string, path: string, what: string, kind: PathKind): Promise<string> {
  const abs = isAbsolute(path) ? resolve(path) : resolve(root, path);
  const rootReal = realRoot(root);
  let real: string;
  try {
    real = await realpath(abs);
  } catch {
    throw new AttemptFailure(`${what}: ${abs} does not exist${isAbsolute(path) ? "" : ` (relative paths resolve against the projects root ${root})`}`);
  }
  if (!isUnder(rootReal, real)) {
    throw new AttemptFailure(`${what}: ${abs}${real !== abs ? ` (${real})` : ""} is outside the projects root ${root}; the local executor reads local paths only below --projects-root`);
  }
  const s = await stat(real);
  if (kind === "dir" && !s.isDirectory()) throw new AttemptFailure(`${what}: ${abs} is not a folder`);
  if (!s.isDirectory() && !s.isFile()) throw new AttemptFailure(`${what}: ${abs} is not a regular file or folder`);
  return real;
}

/**
 * Copies `src` (already checked by {@link resolveUnderRoot}) to `dest`. Symlinks inside a folder
 * are followed only when they stay below `root` and name a regular file or folder; anything
 * else (a link out of the root, a device, a FIFO, a socket) fails the attempt. `keep`, when
 * given, chooses the files to copy by their stats (a linked file's: its target's) — an input
 * window, decided while walking so files outside it are never copied.
 */
export async function copyUnderRoot(root: string, src: string, dest: string, what: string, keep?: (s: Stats, from: string) => boolean): Promise<void> {
  const rootReal = realRoot(root);
  await cp(src, dest, {
    recursive: true,
    dereference: true,
    filter: async (from) => {
      const l = await lstat(from);
      if (l.isSymbolicLink()) {
        let real: string;
        try {
          real = await realpath(from);
        } catch {
          throw new AttemptFailure(`${what}: ${from} is a broken symbolic link`);
        }
        if (!isUnder(rootReal, real)) throw new AttemptFailure(`${what}: ${from} links to ${real}, outside the projects root ${root}`);
        const s = await stat(real);
        if (!s.isFile() && !s.isDirectory()) throw new AttemptFailure(`${what}: ${from} is not a regular file or folder`);
        return s.isDirectory() || !keep || keep(s, from);
      }
      if (!l.isFile() && !l.isDirectory()) throw new AttemptFailure(`${what}: ${from} is not a regular file or folder`);
      return l.isDirectory() || !keep || keep(l, from);
    },
  });
}
