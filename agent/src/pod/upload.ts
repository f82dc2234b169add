/**
 * `parallels-agent pod upload`: the native sidecar of a work pod (an init container with
 * `restartPolicy: Always`: it starts before the step and outlives it). While the step runs it
 * uploads the step's logs to the index's MLflow run every few seconds, so a log outlives the pod
 * and can be read while the step runs; when the step has ended (its wrapper wrote the exit code)
 * it checks the step's metadata sidecar and tells the step's wrapper (which then fails the index
 * if it was refused), uploads the logs a last time and the outputs to the node's run, as the local
 * executor does, then exits. On SIGTERM (the pod is being stopped) it uploads the logs once more and exits.
 */
import { existsSync, statSync } from "node:fs";
import { readFile, rename, writeFile } from "node:fs/promises";
import type { MlflowClient } from "../../../proto/mlflow";
import { uploadDir } from "../executor/shared/artifacts";
import { isSidecar } from "../executor/shared/metadata";
import { partitionLogsDir } from "../executor/shared/partition-runs";
import { checkOutputsMetadata, metadataRefusal, uploadMetadata } from "../executor/shared/metadata-store";
import type { PodAttempt } from "../executor/kubernetes/pod-attempt";
import { podPaths } from "../executor/kubernetes/pod-layout";

export interface UploadOptions {
  mlflow: MlflowClient;
  attempt: PodAttempt;
  /** The index's run (`MLFLOW_RUN_ID` of the env file fetch wrote). */
  runId: string;
  /** This pod's partition of the node (`JOB_COMPLETION_INDEX` through `partitionOfIndex`). */
  index: number;
  root: string;
  signal: AbortSignal;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  log?: (line: string) => void;
}

/** What ended the sidecar: the step's exit code, or a stop before the step ended. */
export type UploadOutcome = { stepExitCode: number } | { stopped: true };

/** Written whole (a rename), so the wrapper never reads half of it. */
async function writeVerdict(path: string, text: string): Promise<void> {
  await writeFile(`${path}.tmp`, text);
  await rename(`${path}.tmp`, path);
}

export async function uploadUntilStepEnds(o: UploadOptions): Promise<UploadOutcome> {
  const paths = podPaths(o.root);
  const sleep =
    o.sleep ??
    ((ms, signal) =>
      new Promise<void>((r) => {
        const t = setTimeout(r, ms);
        signal.addEventListener(
          "abort",
          () => {
            clearTimeout(t);
            r();
          },
          { once: true },
        );
      }));
  // Its own run's logs folder; a partition without a run of its own (beyond the executor's
  // limit of nested runs) logs into a folder of its own under the node's run.
  const logsPrefix = partitionLogsDir(o.index, o.attempt.partitionRuns, o.attempt.partitions > 1);
  const sent = new Map<string, number>();
  const uploadLogs = async () => {
    for (const [name, path] of [
      ["stdout.log", paths.stdout],
      ["stderr.log", paths.stderr],
    ] as const) {
      if (!existsSync(path)) continue;
      const size = statSync(path).size;
      if (sent.get(name) === size) continue; // nothing new since the last upload
      await o.mlflow.uploadArtifact(o.runId, `${logsPrefix}/${name}`, await readFile(path), "text/plain; charset=utf-8");
      sent.set(name, size);
    }
  };
  const pollMs = 500;
  let sinceLogs = 0;
  while (!existsSync(paths.exitCode)) {
    if (o.signal.aborted) {
      await uploadLogs().catch((e: unknown) => o.log?.(`last log upload failed: ${(e as Error).message}`));
      return { stopped: true };
    }
    await sleep(pollMs, o.signal);
    sinceLogs += pollMs;
    if (sinceLogs >= o.attempt.logsEverySeconds * 1000) {
      sinceLogs = 0;
      // A failed upload while the step runs is tried again at the next turn.
      await uploadLogs().catch((e: unknown) => o.log?.(`log upload failed (retried): ${(e as Error).message}`));
    }
  }
  const stepExitCode = Number((await readFile(paths.exitCode, "utf8")).trim());
  // The metadata sidecar of a step that succeeded is checked first, with the local executor's
  // rule, and the verdict handed to the step's wrapper, which waits for it: a refusal fails the
  // index with the same message as the local executor's. A failed step's sidecar is neither
  // checked nor stored (it may stop mid-line), as on the local executor.
  const metadata = stepExitCode === 0 && existsSync(paths.outputs) ? await checkOutputsMetadata(paths.outputs) : undefined;
  if (stepExitCode === 0) await writeVerdict(paths.metadataVerdict, metadata?.problems.length ? metadataRefusal(metadata.problems) : "");
  if (metadata?.problems.length) o.log?.(metadataRefusal(metadata.problems));
  await uploadLogs();
  // Outputs of every index go to the node's run, where the dependants read them (as on the local
  // executor); the sidecars that hold are stored checked, under parallels/metadata/<index>.jsonl.
  if (existsSync(paths.outputs)) {
    await uploadDir(o.mlflow, o.attempt.nodeRunId, paths.outputs, "", 8, (rel) => !isSidecar(rel));
    if (metadata) await uploadMetadata(o.mlflow, o.attempt.nodeRunId, metadata.stored);
  }
  return { stepExitCode };
}
