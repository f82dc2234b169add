// The MLflow runs the executors make for a DAG run (agent/src/executor/shared/mlflow-runs.ts),
// against a real `mlflow server`: what each preparation costs MLflow, and that a redelivered start
// finds the same runs.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { experimentFor, findOrCreateNodeRun, forgetExperiment, parentRunFor } from "../../agent/src/executor/shared/mlflow-runs";
import { uid, workFor } from "../../agent/src/executor/testing";
import { type FetchLike, MlflowClient } from "../../proto/mlflow/index";
import { MLFLOW_START_TIMEOUT_MS, type MlflowTestServer, startMlflowServer } from "../support/mlflow-server";

let server: MlflowTestServer;
/** Endpoints asked since the last `take()`. */
let sent: string[] = [];
const take = () => {
  const out = sent;
  sent = [];
  return out;
};
const counting: FetchLike = (input, init) => {
  sent.push(new URL(input).pathname.replace(/^.*\/api\/2\.0\/mlflow\//, ""));
  return fetch(input, init);
};
const client = () => new MlflowClient({ trackingUri: server.url, fetch: counting, retry: { maxRetries: 2, baseDelayMs: 50 } });
const project = { dir: "/nowhere", sourceName: "file:///repo", entryPoint: "main", params: [["n", "1"]] as [string, string][] };

beforeAll(async () => {
  server = await startMlflowServer();
}, MLFLOW_START_TIMEOUT_MS);
afterAll(async () => {
  await server?.stop();
});

describe("the MLflow runs of a node attempt", () => {
  it("an experiment's id is looked up once per name and client; forgotten, it is looked up again", async () => {
    const mlflow = client();
    const name = uid("exp");
    const id = await experimentFor(mlflow, name);
    expect(take()).toEqual(["experiments/get-by-name", "experiments/create", "experiments/get"]);
    expect(await experimentFor(mlflow, name)).toBe(id);
    expect(take()).toEqual([]);
    forgetExperiment(mlflow, name);
    expect(await experimentFor(mlflow, name)).toBe(id);
    expect(take()).toEqual(["experiments/get-by-name"]);
  });

  it("a first node makes the parent (looked up, made, the race checked) and its run; it reads neither again", async () => {
    const mlflow = client();
    const experimentId = await experimentFor(mlflow, uid("exp"));
    take();
    const work = workFor({ id: "a", project: { uri: "file:///repo" } });
    const parent = await parentRunFor(mlflow, experimentId, work);
    expect(take()).toEqual(["runs/search", "runs/create", "runs/search"]);
    const run = await findOrCreateNodeRun(mlflow, experimentId, parent, work, project);
    expect(take()).toEqual(["runs/search", "runs/create", "runs/log-batch"]);
    expect((await mlflow.getRun(parent)).info.status).toBe("RUNNING");
    expect((await mlflow.getRun(run)).data.tags["mlflow.parentRunId"]).toBe(parent);
  });

  it("a redelivered start, in this process or a new one, finds the same runs; an ended parent is RUNNING again", async () => {
    const experimentId = await experimentFor(client(), uid("exp"));
    const work = workFor({ id: "a", project: { uri: "file:///repo" } });
    const first = client();
    const parent = await parentRunFor(first, experimentId, work);
    const run = await findOrCreateNodeRun(first, experimentId, parent, work, project);
    // The same process: the parent it knows is read again (it may have been ended meanwhile).
    await first.terminateRun(parent, "FAILED");
    take();
    expect(await parentRunFor(first, experimentId, work)).toBe(parent);
    expect(take()).toEqual(["runs/get", "runs/update"]);
    expect((await first.getRun(parent)).info.status).toBe("RUNNING");
    // Another process (a restarted agent): found by tag, no run made.
    const second = client();
    await second.terminateRun(parent, "FINISHED");
    const again = workFor({ id: "a", project: { uri: "file:///repo" } }, { runId: work.runId, nodeRunId: work.nodeRunId });
    take();
    expect(await parentRunFor(second, experimentId, again)).toBe(parent);
    expect(await findOrCreateNodeRun(second, experimentId, parent, again, project)).toBe(run);
    expect(take().filter((e) => e === "runs/create")).toEqual([]);
    expect((await second.getRun(parent)).info.status).toBe("RUNNING");
  });

  it("two processes making the parent at once converge on the oldest", async () => {
    const experimentId = await experimentFor(client(), uid("exp"));
    const work = workFor({ id: "a", project: { uri: "file:///repo" } });
    const [a, b] = await Promise.all([parentRunFor(client(), experimentId, work), parentRunFor(client(), experimentId, work)]);
    expect(a).toBe(b);
  });
});
