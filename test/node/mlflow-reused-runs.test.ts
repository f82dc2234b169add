// A resumed DAG run's reused nodes in MLflow (agent/src/executor/shared/reused-runs.ts), against a
// real `mlflow server`: the agent that makes the new parent gives each a FINISHED child run that
// says where its result is, once; `{node}` inputs of a reused node read the old node run.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { upstreamRunId, upstreamRunIds } from "../../agent/src/executor/shared/artifacts";
import { experimentFor, findOrCreateNodeRun, parentRunFor } from "../../agent/src/executor/shared/mlflow-runs";
import { REUSED_TAGS } from "../../agent/src/executor/shared/reused-runs";
import { uid, workFor } from "../../agent/src/executor/testing";
import type { WorkStart } from "../../proto/messages";
import { MlflowClient } from "../../proto/mlflow/index";
import { MLFLOW_START_TIMEOUT_MS, type MlflowTestServer, startMlflowServer } from "../support/mlflow-server";

let server: MlflowTestServer;
const client = () => new MlflowClient({ trackingUri: server.url, retry: { maxRetries: 2, baseDelayMs: 50 } });
const project = { dir: "/nowhere", sourceName: "file:///repo", entryPoint: "main", params: [] as [string, string][] };

beforeAll(async () => {
  server = await startMlflowServer();
}, MLFLOW_START_TIMEOUT_MS);
afterAll(async () => {
  await server?.stop();
});

/** An old DAG run whose node `prep` finished (with an output artifact), and a resume's start of `train`. */
async function resumed() {
  const mlflow = client();
  const experimentId = await experimentFor(mlflow, uid("exp"));
  const oldWork = workFor({ id: "prep", project: { uri: "file:///repo" } });
  const oldParent = await parentRunFor(mlflow, experimentId, oldWork);
  const oldPrep = await findOrCreateNodeRun(mlflow, experimentId, oldParent, oldWork, project);
  await mlflow.terminateRun(oldPrep, "FINISHED");
  const runId = uid("run");
  const work: WorkStart = {
    ...workFor({ id: "train", project: { uri: "file:///repo" }, inputs: { data: { node: "prep" } } }, { runId, upstream: ["prep"] }),
    upstreamRuns: { prep: oldPrep },
    reused: [{ nodeId: "prep", nodeRunId: `${runId}-prep`, from: { runId: oldWork.runId, nodeRunId: oldWork.nodeRunId, mlflowRunId: oldPrep } }],
  };
  return { mlflow, experimentId, oldWork, oldPrep, work };
}

describe("reused nodes in MLflow", () => {
  it("the new parent gets a FINISHED child run per reused node, tagged with where its result is; made once across agents", async () => {
    const { mlflow, experimentId, oldWork, oldPrep, work } = await resumed();
    const parent = await parentRunFor(mlflow, experimentId, work);
    const children = (await mlflow.childRuns([experimentId], parent)).filter((r) => r.data.tags[REUSED_TAGS.outputsFrom]);
    expect(children).toHaveLength(1);
    const child = children[0]!;
    expect(child.info.status).toBe("FINISHED");
    expect(child.data.tags).toMatchObject({
      "parallels.role": "node",
      "parallels.nodeId": "prep",
      "parallels.nodeRunId": `${work.runId}-prep`,
      "parallels.runId": work.runId,
      [REUSED_TAGS.reusedFrom]: `${oldWork.runId}/${oldWork.nodeRunId}`,
      [REUSED_TAGS.outputsFrom]: oldPrep,
      "mlflow.parentRunId": parent,
    });
    // Another agent (a new client: no cache) starting a node of the same run finds it.
    expect(await parentRunFor(client(), experimentId, work)).toBe(parent);
    expect((await mlflow.childRuns([experimentId], parent)).filter((r) => r.data.tags[REUSED_TAGS.outputsFrom])).toHaveLength(1);
  });

  it("an agent that made the parent for a start without the reused list records it when a start of the run brings it", async () => {
    const { mlflow, experimentId, work } = await resumed();
    const { reused: _reused, ...plain } = work;
    const parent = await parentRunFor(mlflow, experimentId, { ...plain, nodeId: "other", nodeRunId: `${work.runId}-other` });
    expect((await mlflow.childRuns([experimentId], parent)).filter((r) => r.data.tags[REUSED_TAGS.outputsFrom])).toHaveLength(0);
    expect(await parentRunFor(mlflow, experimentId, work)).toBe(parent);
    expect((await mlflow.childRuns([experimentId], parent)).filter((r) => r.data.tags[REUSED_TAGS.outputsFrom])).toHaveLength(1);
  });

  it("a `{node}` input of a reused node reads the old node run: as the start message says, or by the child run's tag", async () => {
    const { mlflow, experimentId, oldPrep, work } = await resumed();
    const parentRunId = await parentRunFor(mlflow, experimentId, work);
    expect(await upstreamRunId({ mlflow, experimentId, parentRunId, upstreamRuns: work.upstreamRuns }, "prep")).toBe(oldPrep);
    expect(await upstreamRunId({ mlflow, experimentId, parentRunId }, "prep")).toBe(oldPrep);
    // The old node run continued an earlier attempt (a partition retry): its outputs are both runs', both ways.
    const earlier = await mlflow.createRun({ experimentId, runName: "earlier" });
    await mlflow.setTag(oldPrep, "parallels.outputsFrom", earlier.info.runId);
    expect(await upstreamRunIds({ mlflow, experimentId, parentRunId, upstreamRuns: work.upstreamRuns }, "prep")).toEqual([oldPrep, earlier.info.runId]);
    expect(await upstreamRunIds({ mlflow, experimentId, parentRunId }, "prep")).toEqual([oldPrep, earlier.info.runId]);
  });
});
