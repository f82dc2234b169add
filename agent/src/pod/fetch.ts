/**
 * `parallels-agent pod fetch`: the init container of a work pod. Before the step starts it puts
 * in the pod's work dir what this index needs — its slice of the partitioned input and every
 * other input whole, the project at its commit (unless the image holds it) — and writes the
 * variables that differ per index (`MLFLOW_RUN_ID`, `PARALLELS_PARTITION_*`) for the step's
 * wrapper and the upload sidecar. Idempotent: a restarted init container starts afresh.
 */
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import type { MlflowClient } from "../../../proto/mlflow";
import { checkoutGit } from "../executor/shared/git";
import { downloadSourceFiles, listSource } from "../executor/shared/inputs";
import { sliceFiles, sliceMetadata, type Manifest } from "../executor/shared/manifest";
import { METADATA_DIR, sidecarPath } from "../executor/shared/metadata";
import { NODE_ARTIFACTS, type PodAttempt } from "../executor/kubernetes/pod-attempt";
import { podPaths } from "../executor/kubernetes/pod-layout";

/** Single-quoted for `sh` (the wrapper sources the file). */
const shQuote = (v: string) => `'${v.replaceAll("'", `'\\''`)}'`;

export function envFile(vars: Record<string, string>): string {
  return Object.entries(vars)
    .map(([k, v]) => `${k}=${shQuote(v)}\n`)
    .join("");
}

/** The run this index logs to: its nested partition run, else the node's run. */
export async function runOfIndex(mlflow: MlflowClient, a: PodAttempt, index: number): Promise<string> {
  if (!a.partitionRuns) return a.nodeRunId;
  const ids = z.array(z.string()).parse(JSON.parse(await mlflow.downloadArtifactText(a.nodeRunId, NODE_ARTIFACTS.partitionRuns)));
  const id = ids[index];
  if (!id) throw new Error(`${NODE_ARTIFACTS.partitionRuns} of run ${a.nodeRunId} has no run for partition ${index}`);
  return id;
}

/** `index`: the node's partition this pod runs (its Job index through `partitionOfIndex`). */
export async function fetchForIndex(mlflow: MlflowClient, a: PodAttempt, index: number, root: string): Promise<Record<string, string>> {
  const paths = podPaths(root);
  if (index < 0 || index >= a.partitions) throw new Error(`partition index ${index} is outside 0…${a.partitions - 1}`);
  await rm(paths.inputs, { recursive: true, force: true });
  for (const dir of [paths.inputs, paths.outputs, join(root, "run"), join(root, "logs")]) await mkdir(dir, { recursive: true });

  const manifest = a.partitionInput !== undefined ? (JSON.parse(await mlflow.downloadArtifactText(a.nodeRunId, NODE_ARTIFACTS.manifest)) as Manifest) : null;
  const own = manifest ? (manifest.partitions[index]?.files ?? []) : null;
  for (const [name, src] of Object.entries(a.inputs)) {
    // Only its own slice of the partitioned input (one listing was made, by the agent); everything of the others.
    const files = name === a.partitionInput && own ? own : await listSource(mlflow, src);
    await downloadSourceFiles(mlflow, src, files, join(paths.inputs, name));
  }

  let projectDir: string;
  if ("git" in a.project) {
    const checkout = await checkoutGit(join(root, "git"), a.project.git, a.project.commit);
    projectDir = a.project.subdirectory ? join(checkout.dir, a.project.subdirectory) : checkout.dir;
  } else projectDir = a.project.dir;

  const vars: Record<string, string> = {
    MLFLOW_RUN_ID: await runOfIndex(mlflow, a, index),
    MLFLOW_TRACKING_URI: a.trackingUri,
    MLFLOW_EXPERIMENT_ID: a.experimentId,
    PARALLELS_INPUTS_DIR: paths.inputs,
    PARALLELS_OUTPUTS_DIR: paths.outputs,
    PARALLELS_PROJECT_DIR: projectDir,
    // The step's metadata sidecar (shared/metadata.ts): the upload sidecar stores it checked.
    PARALLELS_METADATA_FILE: `${paths.outputs}/${sidecarPath(manifest?.nested ? index : undefined)}`,
  };
  if (manifest?.nested) {
    await writeFile(paths.manifest, `${JSON.stringify(sliceFiles(manifest, index))}\n`);
    await writeFile(paths.metadata, `${JSON.stringify(sliceMetadata(manifest, index))}\n`);
    await mkdir(join(paths.outputs, METADATA_DIR), { recursive: true }); // where PARALLELS_METADATA_FILE goes
    Object.assign(vars, {
      PARALLELS_PARTITION_INDEX: String(index),
      PARALLELS_PARTITION_COUNT: String(manifest.count),
      PARALLELS_PARTITION_MANIFEST: paths.manifest,
      PARALLELS_PARTITION_METADATA: paths.metadata,
    });
  }
  // Written last and whole: the wrapper and the sidecar start only after this container ended.
  await writeFile(`${paths.env}.tmp`, envFile(vars));
  await rename(`${paths.env}.tmp`, paths.env);
  return vars;
}
