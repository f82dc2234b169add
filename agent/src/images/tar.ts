/**
 * @module
 * Build contexts as gzipped tarballs: written by the agent (deterministic — sorted entries, time
 * 0, owner 0 — so the same context is the same bytes), read by the build pod's `parallels-agent
 * pod build-context`. ustar with PAX headers for long paths; only folders and regular files.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, resolve, sep } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";

export interface TarEntry {
  path: string;
  /** Absent for a folder. */
  data?: Uint8Array;
  /** Default 0o644 (files), 0o755 (folders). */
  mode?: number;
}

const BLOCK = 512;
const enc = new TextEncoder();

function header(name: string, size: number, mode: number, type: "0" | "5" | "x"): Uint8Array {
  const h = new Uint8Array(BLOCK);
  const put = (s: string, at: number, len: number) => h.set(enc.encode(s).subarray(0, len), at);
  put(name, 0, 100);
  put(`${mode.toString(8).padStart(7, "0")}\0`, 100, 8);
  put("0000000\0", 108, 8); // uid
  put("0000000\0", 116, 8); // gid
  put(`${size.toString(8).padStart(11, "0")}\0`, 124, 12);
  put("00000000000\0", 136, 12); // mtime 0
  put("        ", 148, 8); // checksum placeholder
  put(type, 156, 1);
  put("ustar\0", 257, 6);
  put("00", 263, 2);
  let sum = 0;
  for (const b of h) sum += b;
  put(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8);
  return h;
}

const pad = (n: number) => (BLOCK - (n % BLOCK)) % BLOCK;

/** A PAX record `"<len> path=<value>\n"` (the length counts itself). */
function paxRecord(key: string, value: string): Uint8Array {
  const body = ` ${key}=${value}\n`;
  let len = enc.encode(body).length + 1;
  while (`${len}${body}`.length !== len) len = enc.encode(`${len}${body}`).length;
  return enc.encode(`${len}${body}`);
}

/** The tarball of `entries` (sorted by path; folders get a trailing `/`), gzipped. */
export function tarGz(entries: readonly TarEntry[]): Uint8Array {
  const chunks: Uint8Array[] = [];
  for (const e of [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    const isDir = e.data === undefined;
    const name = isDir ? `${e.path.replace(/\/+$/, "")}/` : e.path;
    const data = e.data ?? new Uint8Array(0);
    if (enc.encode(name).length > 100) {
      const pax = paxRecord("path", name);
      chunks.push(header("././@PaxHeader", pax.length, 0o644, "x"), pax, new Uint8Array(pad(pax.length)));
    }
    chunks.push(header(name, data.length, e.mode ?? (isDir ? 0o755 : 0o644), isDir ? "5" : "0"), data, new Uint8Array(pad(data.length)));
  }
  chunks.push(new Uint8Array(BLOCK * 2));
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return gzipSync(out, { level: 6 });
}

const dec = new TextDecoder();
const field = (h: Uint8Array, at: number, len: number) => dec.decode(h.subarray(at, at + len)).replace(/\0.*$/s, "");

/** The entries of a gzipped tarball (ustar, PAX `path`); anything but folders and regular files is refused. */
export function untarGz(gz: Uint8Array): TarEntry[] {
  const tar = gunzipSync(gz);
  const out: TarEntry[] = [];
  let at = 0;
  let paxPath: string | undefined;
  while (at + BLOCK <= tar.length) {
    const h = tar.subarray(at, at + BLOCK);
    if (h.every((b) => b === 0)) break;
    const size = Number.parseInt(field(h, 124, 12).trim() || "0", 8);
    const type = field(h, 156, 1) || "0";
    const prefix = field(h, 345, 155);
    const name = paxPath ?? (prefix ? `${prefix}/${field(h, 0, 100)}` : field(h, 0, 100));
    const mode = Number.parseInt(field(h, 100, 8).trim() || "644", 8);
    const data = tar.subarray(at + BLOCK, at + BLOCK + size);
    at += BLOCK + size + pad(size);
    if (type === "x") {
      const m = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(dec.decode(data));
      paxPath = m?.[1];
      continue;
    }
    paxPath = undefined;
    if (type === "5") out.push({ path: name.replace(/\/+$/, ""), mode });
    else if (type === "0" || type === "\0") out.push({ path: name, data: new Uint8Array(data), mode });
    else throw new Error(`tar entry ${name}: type ${JSON.stringify(type)} is not a file or folder`);
  }
  return out;
}

/** Writes the entries below `dir`, refusing any path that leads out of it. */
export async function extractTo(entries: readonly TarEntry[], dir: string): Promise<void> {
  const root = resolve(dir);
  for (const e of entries) {
    const target = resolve(root, e.path);
    if (target !== root && !target.startsWith(root + sep)) throw new Error(`tar entry ${e.path} leads outside ${dir}`);
    if (e.data === undefined) await mkdir(target, { recursive: true, mode: e.mode ?? 0o755 });
    else {
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, e.data, { mode: e.mode ?? 0o644 });
    }
  }
}
