/**
 * @module
 * Output metadata (metadata.ts) moved through MLflow: the sidecars of an attempt's outputs
 * folder checked and stored under `parallels/metadata/` of the node's run, and read back for a
 * downstream input.
 *
 * The local executor stores an attempt's sidecars merged into one file (`outputs.jsonl`: one
 * upload per attempt, however many partitions); a Kubernetes pod stores its own
 * (`<index>.jsonl`), as pods end independently. Readers take every stored file of each run along
 * `parallels.outputsFrom` (partitions.ts), oldest run first, and a newer entry for a path replaces
 * an older one — so a partition retry's run, holding only the retried partitions' metadata, adds
 * to what the succeeded partitions stored before (a failed partition's sidecar is never stored).
 * Storing is idempotent (same names, same content) under a redelivered or resumed end.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { InputRef } from "../../../../proto/dag";
import type { MlflowClient } from "../../../../proto/mlflow";
import { type InputContext, listFiles, mapLimit, OWN_ARTIFACTS, parseRunsUri, upstreamRunIds } from "./artifacts";
import { splitRunItem } from "./experiment-input";
import type { InputSource } from "./inputs";
import { formatSidecar, isSidecar, type Metadata, parseSidecar, readStoredSidecar, storedSidecarName, underInputRoot } from "./metadata";

/** Where a node run's checked sidecars are. */
export const METADATA_ARTIFACTS = `${OWN_ARTIFACTS}/metadata`;

export interface CheckedMetadata {
  /** Sidecars that passed, as stored: name in `parallels/metadata/` → text. */
  stored: Map<string, string>;
  /** One line per sidecar that did not (names the sidecar, the line and the field). */
  problems: string[];
}

/**
 * The node's message for sidecars that did not hold, on both executors: the local one fails the
 * node with it, a Kubernetes pod fails its index with it (the step's wrapper, `pod upload`).
 */
export const metadataRefusal = (problems: readonly string[]): string => `${METADATA_REFUSED}: ${problems.join("; ")}`;
export const METADATA_REFUSED = "output metadata refused";

/**
 * Checks every sidecar in `outputsDir` (those `keep` keeps, by outputs-relative path) against the
 * files there (the step's outputs).
 */
export async function checkOutputsMetadata(outputsDir: string, keep: (sidecar: string) => boolean = () => true): Promise<CheckedMetadata> {
  const all = await listFiles(outputsDir);
  const outputs = new Set(all.filter((f) => !isSidecar(f)));
  const out: CheckedMetadata = { stored: new Map(), problems: [] };
  for (const rel of all.filter((f) => isSidecar(f) && keep(f))) {
    const name = storedSidecarName(rel);
    if (!name) {
      out.problems.push(`${rel}: not a metadata sidecar (expected .metadata.jsonl or .metadata/<partition index>.jsonl)`);
      continue;
    }
    const r = parseSidecar(rel, await readFile(join(outputsDir, ...rel.split("/")), "utf8"), outputs);
    if (r.ok) out.stored.set(name, formatSidecar(r.entries));
    else out.problems.push(r.problem);
  }
  return out;
}

/** Stores checked sidecars on the node's run. */
export async function uploadMetadata(mlflow: MlflowClient, runId: string, stored: ReadonlyMap<string, string>): Promise<void> {
  await mapLimit([...stored], 8, async ([name, text]) => {
    await mlflow.uploadArtifact(runId, `${METADATA_ARTIFACTS}/${name}`, text, "application/x-ndjson");
  });
}

/**
 * The metadata of an input's `files` (paths relative to the input's folder) read from the runs
 * holding it (`runIds` newest first; a newer run's sidecar replaces an older one of the same
 * name, and among entries for one path the newer run wins). `path`: the input's `path` below
 * the runs' artifacts. Runs that stored none (any run not made by a step that wrote metadata)
 * give an empty map.
 */
export async function readInputMetadata(mlflow: MlflowClient, runIds: readonly string[], path: string | undefined, files: readonly string[]): Promise<Map<string, Metadata>> {
  const root = (path ?? "").replace(/^\/+|\/+$/g, "");
  // Oldest run first, each run's files in name order: later entries replace earlier ones.
  const stored: [string, string][] = [];
  for (const runId of [...runIds].reverse()) {
    for (const f of await mlflow.listArtifactsRecursive(runId, METADATA_ARTIFACTS)) stored.push([runId, f.path]);
  }
  const texts = new Array<string>(stored.length);
  await mapLimit([...stored.keys()], 8, async (i) => {
    const [runId, artifact] = stored[i]!;
    texts[i] = await mlflow.downloadArtifactText(runId, artifact);
  });
  const wanted = new Set(files);
  const out = new Map<string, Metadata>();
  for (const text of texts) {
    for (const [outputPath, metadata] of readStoredSidecar(text)) {
      const rel = underInputRoot(outputPath, root);
      if (rel !== undefined && wanted.has(rel)) out.set(rel, metadata);
    }
  }
  return out;
}

/** An attempt's checked sidecars as the one file the local executor stores (name order: later entries win on reading). */
export function mergedSidecars(stored: ReadonlyMap<string, string>): Map<string, string> {
  const text = [...stored]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, t]) => t)
    .join("");
  return text ? new Map([["outputs.jsonl", text]]) : new Map();
}

/**
 * The metadata of the partitioned input's `files` on the local executor: from the runs the input
 * was downloaded from (`{node}` — along its retry chain —, `{run}`, `runs:/`, each run of an
 * `{experiment}` input); other sources
 * (local folders, URLs) carry none.
 */
export async function partitionInputMetadata(
  mlflow: MlflowClient,
  ctx: Pick<InputContext, "experimentId" | "parentRunId" | "upstreamRuns">,
  ref: InputRef | undefined,
  files: readonly string[],
): Promise<Map<string, Metadata>> {
  if (!ref || files.length === 0) return new Map();
  if ("node" in ref) return readInputMetadata(mlflow, await upstreamRunIds({ mlflow, ...ctx }, ref.node), ref.path, files);
  if ("run" in ref) return readInputMetadata(mlflow, [ref.run], ref.path, files);
  if ("experiment" in ref) return runsMetadata(mlflow, ref.path, files);
  if (/^runs:\//i.test(ref.uri)) {
    const { runId, path } = parseRunsUri("input", ref.uri);
    return readInputMetadata(mlflow, [runId], path, files);
  }
  return new Map();
}

/** The same for an input source listed once (the Kubernetes executor). */
export async function sourceMetadata(mlflow: MlflowClient, src: InputSource, files: readonly string[]): Promise<Map<string, Metadata>> {
  if ("url" in src || files.length === 0) return new Map();
  if ("runs" in src) return runsMetadata(mlflow, src.path, files);
  return readInputMetadata(mlflow, [src.runId, ...(src.from ?? [])], src.path, files);
}

/** The metadata of an `{experiment}` input's files (`<runId>/<rest>`): each run's own, below its folder. */
async function runsMetadata(mlflow: MlflowClient, path: string | undefined, files: readonly string[]): Promise<Map<string, Metadata>> {
  const byRun = new Map<string, string[]>();
  for (const f of files) {
    const { runId, rest } = splitRunItem(f);
    byRun.set(runId, [...(byRun.get(runId) ?? []), rest]);
  }
  const out = new Map<string, Metadata>();
  for (const [runId, rests] of byRun) {
    for (const [rel, m] of await readInputMetadata(mlflow, [runId], path, rests)) out.set(`${runId}/${rel}`, m);
  }
  return out;
}
