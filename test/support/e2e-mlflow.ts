/**
 * What an end-to-end test reads back from MLflow about a DAG run, in one place: its node runs
 * by node id — under the run's MLflow parent, or found by the run's tags (every attempt, oldest
 * first).
 */
import type { MlflowClient, Run } from "../../proto/mlflow";

const groupByNode = (runs: Run[]): Map<string, Run[]> => {
  const by = new Map<string, Run[]>();
  for (const r of runs) {
    const id = r.data.tags["parallels.nodeId"]!;
    by.set(id, [...(by.get(id) ?? []), r]);
  }
  return by;
};

/** The node runs under a DAG run's MLflow parent, by node id. */
export async function childrenOf(mlflow: MlflowClient, parentRunId: string): Promise<Map<string, Run[]>> {
  const parent = await mlflow.getRun(parentRunId);
  return groupByNode(await mlflow.childRuns([parent.info.experimentId], parentRunId));
}

/** Every attempt's node run of the DAG run `runId` (in the DAG's experiment), by node id, in attempt order. */
export async function nodeRuns(mlflow: MlflowClient, runId: string, dag: string): Promise<Map<string, Run[]>> {
  const experiment = await mlflow.getExperimentByName(dag);
  const runs = await mlflow.searchAllRuns({ experimentIds: [experiment!.experimentId], filter: `tags.\`parallels.runId\` = '${runId}' and tags.\`parallels.role\` = 'node'` });
  const by = groupByNode(runs);
  for (const list of by.values()) list.sort((a, b) => Number(a.data.tags["parallels.attempt"]) - Number(b.data.tags["parallels.attempt"]));
  return by;
}
