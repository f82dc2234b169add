// The bits of Python's urllib.parse and posixpath that MLflow's `path`/`uri` handling relies on.

const SCHEME_CHARS = /^[A-Za-z0-9+\-.]*$/;

export interface UrlParts {
  scheme: string;
  netloc: string;
  path: string;
}

/** urllib.parse.urlsplit (CPython 3.11) reduced to scheme, netloc and path. */
export function urlSplit(input: string): UrlParts {
  // 3.11 strips leading C0 control/space and removes tab/CR/LF anywhere.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the C0 controls are the point: CPython's `url.lstrip(_WHATWG_C0_CONTROL_OR_SPACE)`, i.e. U+0000–U+0020.
  let url = input.replace(/^[\x00-\x20]+/, "").replace(/[\t\r\n]/g, "");
  let scheme = "";
  let netloc = "";
  const i = url.indexOf(":");
  if (i > 0 && /^[A-Za-z]/.test(url) && SCHEME_CHARS.test(url.slice(0, i))) {
    scheme = url.slice(0, i).toLowerCase();
    url = url.slice(i + 1);
  }
  if (url.startsWith("//")) {
    let end = url.length;
    for (const c of "/?#") {
      const j = url.indexOf(c, 2);
      if (j >= 0) end = Math.min(end, j);
    }
    netloc = url.slice(2, end);
    url = url.slice(end);
  }
  const hash = url.indexOf("#");
  if (hash >= 0) url = url.slice(0, hash);
  const q = url.indexOf("?");
  if (q >= 0) url = url.slice(0, q);
  return { scheme, netloc, path: url };
}

/** urllib.parse.unquote (UTF-8, invalid sequences replaced as Python does with errors='replace'). */
export function unquote(s: string): string {
  if (!s.includes("%")) return s;
  return s.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
    const bytes = Uint8Array.from(run.match(/%../g) ?? [], (h) => parseInt(h.slice(1), 16));
    return new TextDecoder("utf-8", { fatal: false }).decode(bytes);
  });
}

/** mlflow.utils.file_utils.get_local_path_or_none: local path for local paths/`file:` URIs, else null. */
export function localPathOrNull(pathOrUri: string): string | null {
  const u = urlSplit(pathOrUri);
  if (u.scheme.length === 0 || (u.scheme === "file" && u.netloc.length === 0)) {
    // local_file_uri_to_path: only a literal "file:" prefix is parsed; url2pathname = unquote.
    const path = pathOrUri.startsWith("file:") ? urlSplit(pathOrUri).path : pathOrUri;
    return unquote(path);
  }
  return null;
}

/** posixpath.join */
export function posixJoin(a: string, ...rest: string[]): string {
  let path = a;
  for (const b of rest) {
    if (b.startsWith("/")) path = b;
    else if (path === "" || path.endsWith("/")) path += b;
    else path += `/${b}`;
  }
  return path;
}

/** posixpath.normpath */
export function posixNormpath(path: string): string {
  if (path === "") return ".";
  const initial = path.startsWith("//") && !path.startsWith("///") ? 2 : path.startsWith("/") ? 1 : 0;
  const out: string[] = [];
  for (const comp of path.split("/")) {
    if (comp === "" || comp === ".") continue;
    if (comp !== ".." || (!initial && !out.length) || out[out.length - 1] === "..") out.push(comp);
    else if (out.length) out.pop();
  }
  const joined = "/".repeat(initial) + out.join("/");
  return joined || ".";
}

/** os.path.abspath against an injected working directory. */
export function posixAbspath(path: string, cwd: string): string {
  return posixNormpath(path.startsWith("/") ? path : posixJoin(cwd, path));
}

/** os.path.splitext's extension (leading dots of the file name do not start an extension). */
export function splitextExt(p: string): string {
  const sep = p.lastIndexOf("/");
  const dot = p.lastIndexOf(".");
  if (dot > sep) {
    for (let i = sep + 1; i < dot; i++) if (p[i] !== ".") return p.slice(dot);
  }
  return "";
}

/** os.path.basename */
export const posixBasename = (p: string): string => p.slice(p.lastIndexOf("/") + 1);
