/**
 * @module
 * A node's inputs as sources to list once and download in slices (the Kubernetes executor lists
 * them in the agent, to compute the partition manifest, and each pod downloads only its own
 * files): `{node}` → the upstream node's newest FINISHED run in this DAG run, `{run}` and
 * `runs:/…` → that MLflow run's artifacts (below `path`), `{experiment}` → its FINISHED runs
 * (those that ended in the input's window), each run's artifacts below `<runId>/`
 * (experiment-input.ts), `http(s)://` → one file. Local paths exist only where the local
 * executor runs; other schemes are not read yet.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join, sep } from "node:path";
import { z } from "zod";
import { windowRefusal, type InputRef } from "../../../../proto/dag";
import type { MlflowClient } from "../../../../proto/mlflow";
import { isMlflowApiError } from "../../../../proto/mlflow";
import { mapLimit, OWN_ARTIFACTS, parseRunsUri, type InputContext, upstreamRunIds, urlFileName, listRunsUnion } from "./artifacts";
import { AttemptFailure } from "./errors";
import { experimentSource, splitRunItem } from "./experiment-input";
import type { InputWindow } from "./windows";

/**
 * `from`: older runs whose artifacts the source includes too (an upstream node retried partition
 * by partition: the runs its newest attempt continues, newest first); `runId`'s files win.
 */
export const InputSourceSchema = z.union([
  z.object({ runId: z.string(), path: z.string().optional(), from: z.array(z.string()).optional() }),
  z.object({ url: z.string(), fileName: z.string() }),
  /** An `{experiment}` input's runs, chosen once (with its window) by the agent. */
  z.object({ runs: z.array(z.string()), path: z.string().optional() }),
]);
export type InputSource = z.infer<typeof InputSourceSchema>;

/** Where each input of the node comes from; `windows`: the start message's, by input name. */
export async function resolveInputSources(
  ctx: Pick<InputContext, "mlflow" | "experimentId" | "parentRunId" | "upstreamRuns">,
  inputs: Record<string, InputRef> | undefined,
  executor: string,
  windows?: Readonly<Record<string, InputWindow>>,
): Promise<Record<string, InputSource>> {
  const out: Record<string, InputSource> = {};
  for (const [name, ref] of Object.entries(inputs ?? {})) {
    if ("experiment" in ref) {
      out[name] = await experimentSource(ctx.mlflow, name, ref, windowOf(name, ref, windows));
      continue;
    }
    // A window needs a per-item arrival time: of the sources read here only {experiment} has
    // one (local folders, which do too, exist only for the local executor).
    if (ref.window) throw new AttemptFailure(`input '${name}': ${windowRefusal(ref) ?? `a window on a local folder needs the local executor: the ${executor} executor cannot read it`}`);
    if ("node" in ref) {
      const [runId, ...from] = await upstreamRunIds(ctx, ref.node);
      out[name] = { runId: runId!, ...(ref.path ? { path: ref.path } : {}), ...(from.length > 0 ? { from } : {}) };
    } else if ("run" in ref) out[name] = { runId: ref.run, ...(ref.path ? { path: ref.path } : {}) };
    else if (/^runs:\//i.test(ref.uri)) {
      const { runId, path } = parseRunsUri(name, ref.uri);
      out[name] = { runId, ...(path ? { path } : {}) };
    } else if (/^https?:\/\//i.test(ref.uri)) {
      let url: URL;
      try {
        url = new URL(ref.uri);
      } catch {
        throw new AttemptFailure(`input '${name}': not a valid URL: ${ref.uri}`);
      }
      out[name] = { url: ref.uri, fileName: urlFileName(url) };
    } else {
      const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(ref.uri)?.[1]?.toLowerCase();
      throw new AttemptFailure(
        scheme && scheme !== "file"
          ? `input '${name}': URI scheme '${scheme}:' is not supported by the ${executor} executor yet (use runs:/, http(s)://, {node} or {run}): ${ref.uri}`
          : `input '${name}': a local path (${ref.uri}) exists only on the machine of the local executor; on a cluster, give the data as {node}, {run}, runs:/ or http(s)://`,
      );
    }
  }
  return out;
}

/**
 * The window the run fixed for a windowed input. A windowed input without one (a start message
 * from a control plane that fixed none) is refused rather than read whole: taking every item
 * would take again what earlier runs took.
 */
export function windowOf(name: string, ref: InputRef, windows: Readonly<Record<string, InputWindow>> | undefined): InputWindow | undefined {
  if (!ref.window) return undefined;
  const w = windows?.[name];
  if (!w) throw new AttemptFailure(`input '${name}' has a window, but the run fixed none for it (the start message carries no window '${name}')`);
  return w;
}

const under = (root: string) => (root ? `${root}/` : "");
const trimSlashes = (p: string | undefined) => (p ?? "").replace(/^\/+|\/+$/g, "");

/** A run's files below `root` (relative to it); `root` naming one file: that file's name. */
async function listRunFiles(mlflow: MlflowClient, runId: string, root: string): Promise<string[]> {
  let files = await mlflow.listArtifactsRecursive(runId, root);
  if (!root) files = files.filter((f) => f.path !== OWN_ARTIFACTS && !f.path.startsWith(`${OWN_ARTIFACTS}/`));
  if (files.length > 0 || root === "") return files.map((f) => f.path.slice(under(root).length));
  // Empty: `root` is a file of this run, or absent from it.
  const parent = root.includes("/") ? root.slice(0, root.lastIndexOf("/")) : "";
  const entries = await mlflow.listArtifacts(runId, parent);
  return entries.some((f) => !f.isDir && f.path === root) ? [root.split("/").at(-1)!] : [];
}

/** The files of a source, as `/`-separated paths relative to the input's folder, sorted. */
export async function listSource(mlflow: MlflowClient, src: InputSource): Promise<string[]> {
  if ("url" in src) return [src.fileName];
  const root = trimSlashes(src.path);
  if ("runs" in src) {
    const perRun = new Array<string[]>(src.runs.length);
    await mapLimit([...src.runs.keys()], 8, async (i) => {
      perRun[i] = (await listRunFiles(mlflow, src.runs[i]!, root)).map((f) => `${src.runs[i]}/${f}`);
    });
    return perRun.flat().sort();
  }
  if (src.from?.length) {
    const union = await listRunsUnion(mlflow, [src.runId, ...src.from], root);
    if (union.size === 0 && root !== "") return [root.split("/").at(-1)!];
    return [...union.keys()].sort();
  }
  let files = await mlflow.listArtifactsRecursive(src.runId, root);
  if (!src.path) files = files.filter((f) => f.path !== OWN_ARTIFACTS && !f.path.startsWith(`${OWN_ARTIFACTS}/`));
  // A `path` naming one file lists nothing: the input is that file (as the local executor does).
  if (files.length === 0 && root !== "") return [root.split("/").at(-1)!];
  return files.map((f) => f.path.slice(under(root).length)).sort();
}

/**
 * Downloads `files` (paths from {@link listSource}) of a source into `dest`. A file whose path
 * would leave `dest` is refused.
 */
export async function downloadSourceFiles(mlflow: MlflowClient, src: InputSource, files: readonly string[], dest: string, concurrency = 8): Promise<void> {
  await mkdir(dest, { recursive: true });
  if ("runs" in src) return downloadRunsFiles(mlflow, src, files, dest, concurrency);
  const root = "runId" in src ? (src.path ?? "").replace(/^\/+|\/+$/g, "") : "";
  const listedAsFile = "runId" in src && root !== "" && files.length === 1 && files[0] === root.split("/").at(-1);
  // A node retried partition by partition: each file from the run that holds it (one listing per run).
  const origin = "runId" in src && src.from?.length && !listedAsFile ? await listRunsUnion(mlflow, [src.runId, ...src.from], root) : undefined;
  await mapLimit(files, concurrency, async (rel) => {
    const target = join(dest, ...rel.split("/"));
    if (!target.startsWith(dest + sep)) throw new AttemptFailure(`input file path escapes the inputs folder: ${rel}`);
    await mkdir(dirname(target), { recursive: true });
    if ("url" in src) {
      const res = await fetch(src.url, { redirect: "follow", signal: AbortSignal.timeout(10 * 60_000) });
      const shown = new URL(src.url);
      if (!res.ok) throw new Error(`GET ${shown.origin}${shown.pathname} answered ${res.status} ${res.statusText}`);
      await writeFile(target, new Uint8Array(await res.arrayBuffer()));
      return;
    }
    // A single-file `path` is that file itself; otherwise files sit below `path`.
    const artifact = listedAsFile ? root : `${under(root)}${rel}`;
    await writeFile(target, await mlflow.downloadArtifact(origin?.get(rel) ?? src.runId, artifact));
  });
}

/** {@link downloadSourceFiles} of an `{experiment}` input: `<runId>/<rest>` from that run. */
async function downloadRunsFiles(mlflow: MlflowClient, src: { runs: string[]; path?: string | undefined }, files: readonly string[], dest: string, concurrency: number): Promise<void> {
  const root = trimSlashes(src.path);
  const runs = new Set(src.runs);
  await mapLimit(files, concurrency, async (rel) => {
    const { runId, rest } = splitRunItem(rel);
    if (!runs.has(runId)) throw new AttemptFailure(`input file ${rel} is not below one of the input's runs`);
    const target = join(dest, ...rel.split("/"));
    if (!target.startsWith(dest + sep)) throw new AttemptFailure(`input file path escapes the inputs folder: ${rel}`);
    await mkdir(dirname(target), { recursive: true });
    let data: Uint8Array;
    try {
      data = await mlflow.downloadArtifact(runId, `${under(root)}${rest}`);
    } catch (e) {
      // `path` naming one file: the item is that file, under its own name.
      if (!(isMlflowApiError(e) && e.status === 404 && root !== "" && rest === root.split("/").at(-1))) throw e;
      data = await mlflow.downloadArtifact(runId, root);
    }
    await writeFile(target, data);
  });
}
