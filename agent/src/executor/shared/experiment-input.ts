/**
 * @module
 * `{experiment, path?}` inputs: the artifacts of an MLflow experiment's FINISHED runs, each run's
 * below a folder named by its run id (`<runId>/<file>`), so runs that log the same file names
 * never collide and a step can tell its batches apart.
 *
 * With a window, the runs whose `end_time` is in it (`[from, to)`): MLflow records no time per
 * artifact, but a run's artifacts are final once it ended, so its end is when its items
 * "arrived". The runs are chosen once, by one search (the Kubernetes executor lists them in the
 * agent and hands the pods the run ids), and the window is checked again here on each run's
 * `endTime`, whatever the server's filter did. A run's `end_time` is what its writer sent when
 * it ended it: a writer that ends a run with a time earlier than the moment it calls MLflow
 * (a clock behind, a back-dated end) can land in a window a run already searched — it is then
 * never taken.
 */
import type { MlflowClient, Run } from "../../../../proto/mlflow";
import { isMlflowApiError, runFilter } from "../../../../proto/mlflow";
import { AttemptFailure } from "./errors";
import { inWindow, type InputWindow } from "./windows";

/** The source an `{experiment}` input resolves to: its runs, oldest end first. */
export interface ExperimentRunsSource {
  runs: string[];
  path?: string;
}

/** The experiment by name, else — for a number — by id. */
async function experimentId(mlflow: MlflowClient, input: string, experiment: string): Promise<string> {
  const byName = await mlflow.getExperimentByName(experiment);
  if (byName) return byName.experimentId;
  if (/^\d+$/.test(experiment)) {
    try {
      return (await mlflow.getExperiment(experiment)).experimentId;
    } catch (e) {
      if (!(isMlflowApiError(e) && e.status >= 400 && e.status < 500 && e.status !== 429)) throw e;
    }
  }
  throw new AttemptFailure(`input '${input}': no MLflow experiment named (or with id) '${experiment}'`);
}

/** The MLflow search filter of an experiment input's runs: FINISHED, and ended in `window`. */
export function experimentRunsFilter(window: Pick<InputWindow, "from" | "to"> | undefined): string {
  const clauses = [runFilter({ status: "FINISHED" })];
  if (window) clauses.push(`attributes.end_time >= ${Math.trunc(window.from)}`, `attributes.end_time < ${Math.ceil(window.to)}`);
  return clauses.join(" AND ");
}

/** The runs an experiment input takes (oldest end first, then by id): FINISHED and, with a window, ended in it. */
export function keptRuns(runs: readonly Run[], window: Pick<InputWindow, "from" | "to"> | undefined): string[] {
  return runs
    .filter((r) => r.info.status === "FINISHED" && r.info.endTime !== undefined && (!window || inWindow(r.info.endTime, window)))
    .sort((a, b) => a.info.endTime! - b.info.endTime! || (a.info.runId < b.info.runId ? -1 : a.info.runId > b.info.runId ? 1 : 0))
    .map((r) => r.info.runId);
}

/** Resolves an `{experiment}` input to its runs (one search, every page). */
export async function experimentSource(mlflow: MlflowClient, input: string, ref: { experiment: string; path?: string | undefined }, window: InputWindow | undefined): Promise<ExperimentRunsSource> {
  const id = await experimentId(mlflow, input, ref.experiment);
  const runs = await mlflow.searchAllRuns({ experimentIds: [id], filter: experimentRunsFilter(window) });
  return { runs: keptRuns(runs, window), ...(ref.path ? { path: ref.path } : {}) };
}

/** `<runId>/<rest>` of an experiment input's item. */
export function splitRunItem(rel: string): { runId: string; rest: string } {
  const i = rel.indexOf("/");
  return { runId: rel.slice(0, i), rest: rel.slice(i + 1) };
}
