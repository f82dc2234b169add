/**
 * @module
 * Conformance cases (format: test/fixtures/mlflow/README.md): reading a case file, and the
 * sandbox a case runs in — project dir, launcher cwd and run storage dir in a fresh temp folder,
 * with the `${PROJECT_DIR}`-style placeholders of its expectations filled in.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import type { PathResolver, PyValue } from "../../../proto/mlproject/index.js";

/** `major.minor.micro` the cases' `${LAUNCHER_PYTHON_VERSION}` stands for. */
export const LAUNCHER_PYTHON = "3.11.7";

export interface Case {
  id: string;
  kind: string;
  mlproject: string | null;
  mlproject_filename?: string;
  files?: Record<string, string>;
  cwd_files?: Record<string, string>;
  entry_point: string | null;
  parameters: Record<string, PyValue>;
  cli_args?: string[];
  storage_dir?: string | null;
  env?: Record<string, string | null>;
  env_file?: string;
  expect: Record<string, unknown>;
}

/**
 * Parse a case file. JSON ints are Python ints and JSON floats Python floats: ints become bigint
 * (as the engine's PyValue has them), so `3` and `3.0` stay apart.
 */
export function parseCases(text: string): Case[] {
  return JSON.parse(text, function (this: unknown, _k, v, ctx?: { source?: string }) {
    return typeof v === "number" && ctx?.source !== undefined && /^-?\d+$/.test(ctx.source) ? BigInt(ctx.source) : v;
  }) as Case[];
}

export const readCases = (path: string): Case[] => parseCases(readFileSync(path, "utf8"));

function writeTree(dir: string, files: Record<string, string> | undefined) {
  for (const [rel, text] of Object.entries(files ?? {})) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), text);
  }
}

export interface Sandbox {
  root: string;
  projectDir: string;
  cwd: string;
  runStorageDir: string;
  /** Fill in the placeholders of an expectation (strings, inside arrays and plain objects). */
  subst<T>(v: T): T;
  remove(): void;
}

export function sandbox(c: Case): Sandbox {
  const root = mkdtempSync(join(tmpdir(), `mlproject-${c.id.slice(0, 40)}-`));
  const projectDir = join(root, "project");
  const cwd = join(root, "cwd");
  const storage = join(root, "storage");
  for (const d of [projectDir, cwd, storage]) mkdirSync(d);
  if (c.mlproject !== null) writeFileSync(join(projectDir, c.mlproject_filename ?? "MLproject"), c.mlproject);
  writeTree(projectDir, c.files);
  writeTree(cwd, c.cwd_files);
  const runStorageDir = mkdtempSync(join(storage, "run-")); // tempfile.mkdtemp(dir=storage_dir)
  const subst = <T>(v: T): T => {
    if (typeof v === "string") {
      return v.replaceAll("${PROJECT_DIR}", projectDir).replaceAll("${CWD}", cwd).replaceAll("${RUN_STORAGE_DIR}", runStorageDir).replaceAll("${LAUNCHER_PYTHON_VERSION}", LAUNCHER_PYTHON) as T;
    }
    if (Array.isArray(v)) return v.map(subst) as T;
    if (v && typeof v === "object" && v.constructor === Object) {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, subst(x)])) as T;
    }
    return v;
  };
  return { root, projectDir, cwd, runStorageDir, subst, remove: () => rmSync(root, { recursive: true, force: true }) };
}

/** `path` parameters as MLflow resolves them, with the download mocked as the cases say. */
export function resolver(sb: Sandbox): PathResolver {
  return {
    cwd: sb.cwd,
    runStorageDir: sb.runStorageDir,
    exists: (p) => existsSync(p),
    download: (uri, destDir) => {
      mkdirSync(destDir, { recursive: true }); // MLflow: os.mkdir(download_dir)
      return join(destDir, basename(new URL(uri).pathname)); // mocked download: basename of the URI path
    },
  };
}
