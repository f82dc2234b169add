/**
 * @module
 * Moving step data through MLflow: a node's inputs downloaded into `inputs/<name>/`, its
 * outputs and logs uploaded as artifacts. Artifacts under `parallels/` (logs, the partition
 * manifest) are the executor's own and are not downloaded as inputs unless `path` names them.
 *
 * - `{node, path?}`: the artifacts of the upstream node's run in the same DAG run (the newest
 *   FINISHED attempt under the parent run);
 * - `{run, path?}`: the artifacts of any MLflow run;
 * - `{experiment, path?}`: the artifacts of an experiment's FINISHED runs, each below `<runId>/`
 *   (experiment-input.ts);
 * - `{uri}`: a local path (absolute, `file://`, or relative to the projects root) is copied —
 *   only below the projects root (`paths.ts`); `runs:/<run_id>/<path>` (MLflow's run URI) is
 *   `{run, path}`; an `http(s)://` URL is one file, downloaded (streamed) under its own name;
 *   other schemes (`s3:`, `gs:` …) are refused with a clear message for now.
 *
 * A window on an input (`WorkStart.windows`) applies to local paths (files by modification time)
 * and `{experiment}` inputs (runs by end time): see windows.ts.
 */
import { mkdir, readdir, stat, writeFile } from "node:fs/promises";
import { createWriteStream, openAsBlob, type Dirent, type Stats } from "node:fs";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { basename, dirname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { isMlflowApiError, type MlflowClient, type Run } from "../../../../proto/mlflow";
import { windowRefusal, type InputRef } from "../../../../proto/dag";
import { AttemptFailure } from "./errors";
import { experimentSource } from "./experiment-input";
import { downloadSourceFiles, listSource, windowOf } from "./inputs";
import { PARALLELS_TAGS } from "./mlflow-runs";
import { PARTITION_TAGS } from "./partitions";
import { copyUnderRoot, resolveUnderRoot } from "./paths";
import { REUSED_TAGS } from "./reused-runs";
import { inWindow, type InputWindow } from "./windows";

/** Artifacts of the executor itself (logs, manifest), below each run's artifact root. */
export const OWN_ARTIFACTS = "parallels";

export interface InputContext {
  mlflow: MlflowClient;
  experimentId: string;
  parentRunId: string;
  projectsRoot: string;
  /** Reused upstream nodes (a resumed run's): node id → the MLflow run holding its outputs (WorkStart `upstreamRuns`). */
  upstreamRuns?: Readonly<Record<string, string>> | undefined;
  /** Concurrent downloads (default 8). */
  concurrency?: number;
}

/** Run `fn` over items with at most `n` at once. */
export async function mapLimit<T>(items: readonly T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.max(1, Math.min(n, items.length)) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  });
  await Promise.all(workers);
}

/**
 * The runs holding an upstream node's outputs, newest first: its newest attempt that FINISHED —
 * or FAILED with only some partitions failed (tag `parallels.partitions.failed`), which the
 * control plane accepts under the node's `minSuccessRatio` (a node is only an input once it
 * succeeded or was accepted) — then the runs it continues (`parallels.outputsFrom`, a partition
 * retry): the node's outputs are the union of theirs (partitions.ts says why).
 *
 * A node reused from the run this one resumes starts from the old node run the start message
 * names (`upstreamRuns`); without it, from its FINISHED child run under this parent, whose
 * `parallels.outputsFrom` names the old node run (reused-runs.ts).
 */
export async function upstreamRunIds(ctx: Pick<InputContext, "mlflow" | "experimentId" | "parentRunId" | "upstreamRuns">, nodeId: string): Promise<string[]> {
  const given = ctx.upstreamRuns?.[nodeId];
  if (given) return continued(ctx.mlflow, await ctx.mlflow.getRun(given), new Map());
  const runs = await ctx.mlflow.findRuns([ctx.experimentId], {
    parentRunId: ctx.parentRunId,
    tags: { [PARALLELS_TAGS.role]: "node", [PARALLELS_TAGS.nodeId]: nodeId },
  });
  const usable = runs
    .filter((r) => r.info.status === "FINISHED" || (r.info.status === "FAILED" && r.data.tags[PARTITION_TAGS.failedPartitions]))
    .sort((a, b) => Number(b.data.tags[PARALLELS_TAGS.attempt] ?? 0) - Number(a.data.tags[PARALLELS_TAGS.attempt] ?? 0));
  if (!usable[0]) {
    const seen = runs.map((r) => `attempt ${r.data.tags[PARALLELS_TAGS.attempt] ?? "?"} ${r.info.status}`).join(", ");
    throw new AttemptFailure(`no FINISHED MLflow run of upstream node '${nodeId}' under the DAG run's parent run ${ctx.parentRunId}${seen ? ` (found: ${seen})` : ""}`);
  }
  const byId = new Map(runs.map((r) => [r.info.runId, r]));
  // A reused node's child run holds nothing itself: start from the old node run it names.
  const old = usable[0].data.tags[REUSED_TAGS.reusedFrom] ? usable[0].data.tags[PARTITION_TAGS.outputsFrom] : undefined;
  return continued(ctx.mlflow, old ? await ctx.mlflow.getRun(old) : usable[0], byId);
}

/** `run`, then the runs it continues (`parallels.outputsFrom`), newest first. */
async function continued(mlflow: MlflowClient, run: Run, byId: ReadonlyMap<string, Run>): Promise<string[]> {
  const chain = [run.info.runId];
  for (let from = run.data.tags[PARTITION_TAGS.outputsFrom]; from && !chain.includes(from); ) {
    chain.push(from);
    from = (byId.get(from) ?? (await mlflow.getRun(from))).data.tags[PARTITION_TAGS.outputsFrom];
  }
  return chain;
}

/** The run holding an upstream node's outputs (the newest of {@link upstreamRunIds}). */
export async function upstreamRunId(ctx: Pick<InputContext, "mlflow" | "experimentId" | "parentRunId" | "upstreamRuns">, nodeId: string): Promise<string> {
  return (await upstreamRunIds(ctx, nodeId))[0]!;
}

/**
 * The artifacts below `root` of several runs as one folder (newest first in `runIds`; a newer
 * run's file wins over an older one's at the same path): relative path → the run holding it.
 * The executor's own artifacts are left out unless `root` names them.
 */
export async function listRunsUnion(mlflow: MlflowClient, runIds: readonly string[], root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const runId of [...runIds].reverse()) {
    let files = await mlflow.listArtifactsRecursive(runId, root);
    if (!root) files = files.filter((f) => f.path !== OWN_ARTIFACTS && !f.path.startsWith(`${OWN_ARTIFACTS}/`));
    for (const f of files) out.set(root ? f.path.slice(root.length + 1) : f.path, runId);
  }
  return out;
}

/**
 * Download the artifacts of `runId` below `path` into `dest`; the number of files. `runId` may
 * be a list (newest first): their union ({@link listRunsUnion}).
 */
export async function downloadRunArtifacts(
  mlflow: MlflowClient,
  runId: string | readonly string[],
  path: string | undefined,
  dest: string,
  concurrency = 8,
  only?: ReadonlySet<string>,
): Promise<number> {
  const runIds = typeof runId === "string" ? [runId] : runId;
  const root = (path ?? "").replace(/^\/+|\/+$/g, "");
  const files = await listRunsUnion(mlflow, runIds, root);
  if (only && files.size > 0) for (const rel of [...files.keys()]) if (!only.has(rel)) files.delete(rel);
  await mkdir(dest, { recursive: true });
  if (files.size === 0 && root !== "") {
    // `path` may name a single file (a listing of a file is empty): the newest run that has it.
    for (const id of runIds) {
      try {
        const data = await mlflow.downloadArtifact(id, root);
        await writeFile(join(dest, basename(root)), data);
        return 1;
      } catch (e) {
        if (!(isMlflowApiError(e) && e.status === 404)) throw e;
      }
    }
    return 0;
  }
  await mapLimit([...files], concurrency, async ([rel, from]) => {
    const target = join(dest, ...rel.split("/"));
    if (!target.startsWith(dest + sep)) throw new AttemptFailure(`artifact path escapes the inputs folder: ${rel}`);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, await mlflow.downloadArtifact(from, root ? `${root}/${rel}` : rel));
  });
  return files.size;
}

/**
 * Of the partitioned input, only these items (paths relative to the input, `/`-separated): a
 * partition retry's partitions need only theirs, not the whole input again.
 */
export interface OnlyItems {
  input: string;
  files: ReadonlySet<string>;
}

/**
 * Fill `inputsDir/<name>/` for every input of the node. An input with a window (`windows`, by
 * input name: the start message's) gets only the files that arrived in it (windows.ts); the
 * answer is how many files each windowed input kept.
 */
export async function downloadInputs(
  ctx: InputContext,
  inputs: Record<string, InputRef> | undefined,
  inputsDir: string,
  windows?: Readonly<Record<string, InputWindow>>,
  only?: OnlyItems,
): Promise<Record<string, number>> {
  await mkdir(inputsDir, { recursive: true });
  const kept: Record<string, number> = {};
  for (const [name, ref] of Object.entries(inputs ?? {})) {
    const dest = join(inputsDir, name);
    const window = windowOf(name, ref, windows);
    // A partition retry's own items only (an experiment's runs are listed whole: not narrowed).
    const items = only?.input === name ? only.files : undefined;
    if ("experiment" in ref) {
      const src = await experimentSource(ctx.mlflow, name, ref, window);
      const files = await listSource(ctx.mlflow, src);
      await downloadSourceFiles(ctx.mlflow, src, files, dest, ctx.concurrency).catch((e: unknown) => {
        throw inputError(name, `artifacts of the runs of experiment '${ref.experiment}'`, e);
      });
      if (window) kept[name] = files.length;
    } else if (window) {
      // Registered DAGs are checked already; this guards DAGs registered before the check.
      const refused = windowRefusal(ref);
      if (refused) throw new AttemptFailure(`input '${name}': ${refused}`);
      await copyUri(name, (ref as { uri: string }).uri, ctx.projectsRoot, dest, window);
      kept[name] = (await listFiles(dest)).length;
    } else if ("node" in ref) {
      const runIds = await upstreamRunIds(ctx, ref.node);
      await downloadRunArtifacts(ctx.mlflow, runIds, ref.path, dest, ctx.concurrency, items).catch((e: unknown) => {
        throw inputError(name, `artifacts of node '${ref.node}' (run ${runIds.join(", ")})`, e);
      });
    } else if ("run" in ref) {
      await downloadRunArtifacts(ctx.mlflow, ref.run, ref.path, dest, ctx.concurrency, items).catch((e: unknown) => {
        throw inputError(name, `artifacts of MLflow run ${ref.run}`, e);
      });
    } else if (/^runs:\//i.test(ref.uri)) {
      const { runId, path } = parseRunsUri(name, ref.uri);
      await downloadRunArtifacts(ctx.mlflow, runId, path, dest, ctx.concurrency, items).catch((e: unknown) => {
        throw inputError(name, `artifacts of MLflow run ${runId}`, e);
      });
    } else if (/^https?:\/\//i.test(ref.uri)) {
      await downloadUrl(name, ref.uri, dest);
    } else {
      await copyUri(name, ref.uri, ctx.projectsRoot, dest, undefined, items);
    }
  }
  return kept;
}

function inputError(name: string, what: string, e: unknown): unknown {
  if (e instanceof AttemptFailure) return e;
  if (isMlflowApiError(e) && e.status >= 400 && e.status < 500 && e.status !== 429) {
    return new AttemptFailure(`input '${name}': could not download the ${what}: ${e.serverMessage}`, { cause: e });
  }
  return e; // network trouble: retried by the caller
}

/** `runs:/<run_id>/<path>` as MLflow writes it (the path may be empty: the whole run). */
export function parseRunsUri(name: string, uri: string): { runId: string; path: string | undefined } {
  const m = /^runs:\/+([0-9A-Za-z_-]+)(?:\/(.*))?$/i.exec(uri);
  if (!m) throw new AttemptFailure(`input '${name}': expected runs:/<run_id>/<path>, got ${uri}`);
  const path = (m[2] ?? "").replace(/^\/+|\/+$/g, "");
  if (path.split("/").includes("..")) throw new AttemptFailure(`input '${name}': ".." is not allowed in a runs:/ path: ${uri}`);
  return { runId: m[1]!, path: path || undefined };
}

/** The file name an URL's download is stored under: the last path segment, else `download`. */
export function urlFileName(url: URL): string {
  const last = decodeURIComponent(url.pathname.split("/").filter(Boolean).at(-1) ?? "");
  return last && last !== "." && last !== ".." && !/[/\\\0]/.test(last) ? last : "download";
}

/** Streams an http(s) URL into `dest/<name>`. A 4xx is final; network trouble and 5xx are retried by the caller. */
async function downloadUrl(name: string, uri: string, dest: string): Promise<void> {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new AttemptFailure(`input '${name}': not a valid URL: ${uri}`);
  }
  const shown = `${url.origin}${url.pathname}`; // no query string or credentials in messages
  const res = await fetch(url, { redirect: "follow", signal: AbortSignal.timeout(10 * 60_000) }).catch((e: unknown) => {
    throw new Error(`input '${name}': could not reach ${shown}: ${(e as Error).message}`);
  });
  if (!res.ok || !res.body) {
    await res.body?.cancel().catch(() => undefined);
    const message = `input '${name}': GET ${shown} answered ${res.status} ${res.statusText}`;
    if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) throw new AttemptFailure(message);
    throw new Error(message);
  }
  await mkdir(dest, { recursive: true });
  await pipeline(Readable.fromWeb(res.body as import("node:stream/web").ReadableStream), createWriteStream(join(dest, urlFileName(url))));
}

/** A local path input copied into `dest`; with `window`, only the files whose mtime is in it. */
async function copyUri(name: string, uri: string, projectsRoot: string, dest: string, window?: InputWindow, only?: ReadonlySet<string>): Promise<void> {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(uri)?.[1]?.toLowerCase();
  if (scheme && scheme !== "file") {
    throw new AttemptFailure(`input '${name}': URI scheme '${scheme}:' is not supported by the local executor yet (use a local path, file://, http(s)://, runs:/, {node} or {run}): ${uri}`);
  }
  let path: string;
  try {
    path = scheme === "file" ? fileURLToPath(uri) : uri;
  } catch (e) {
    throw new AttemptFailure(`input '${name}': ${(e as Error).message}: ${uri}`);
  }
  const real = await resolveUnderRoot(projectsRoot, path, `input '${name}'`, "file-or-dir");
  await mkdir(dest, { recursive: true });
  const s = await stat(real);
  const keep =
    window || (only && s.isDirectory())
      ? (f: Stats, from: string) => (!window || inWindow(f.mtimeMs, window)) && (!only || !s.isDirectory() || only.has(relative(real, from).split(sep).join("/")))
      : undefined;
  await copyUnderRoot(projectsRoot, real, s.isDirectory() ? dest : join(dest, basename(path)), `input '${name}'`, keep);
}

/** Every file below `dir`, as `/`-separated paths relative to it, sorted. */
export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    let entries: Dirent[];
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) out.push(relative(dir, p).split(sep).join("/"));
    }
  };
  await walk(dir);
  return out.sort();
}

/** Upload every file below `dir` (those `keep` keeps) to `prefix` (may be "") of the run's artifacts. */
export async function uploadDir(mlflow: MlflowClient, runId: string, dir: string, prefix: string, concurrency = 8, keep?: (rel: string) => boolean): Promise<number> {
  const files = (await listFiles(dir)).filter((f) => keep?.(f) ?? true);
  await mapLimit(files, concurrency, async (rel) => {
    const blob = await openAsBlob(join(dir, ...rel.split("/")));
    await mlflow.uploadArtifact(runId, prefix ? `${prefix}/${rel}` : rel, blob);
  });
  return files.length;
}
