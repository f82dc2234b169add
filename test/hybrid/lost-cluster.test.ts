/**
 * A lost cluster on real API servers (issue 10): the embedded default (`wrangler dev`, nats-server,
 * `mlflow server`) and three clusters of the KWOK harness set up as users would (k8s-site.ts):
 * `eks` and `eks-2` (cloud, each with a GPU pool tainted `nvidia.com/gpu`, labelled gpu=true) and
 * `ezmeral` (on-prem, CPU only). KWOK stands in for kubelets: a pod "runs" for its
 * PARALLELS_TEST_DELAY (scripts/k8s/stages.yaml).
 *
 * Two runs have their `train` running on `eks` when `eks` goes dark — its agent and its whole
 * cluster (etcd, API server, controllers, kwok) stopped, its state kept:
 *  - `retryElsewhere` (prepare on ezmeral → train, selector gpu=true → report on ezmeral): once
 *    eks is offline and the grace is over, attempt 1 is given up and attempt 2 runs on eks-2;
 *  - `fail` (train named eks → report): the run fails, the node's message naming eks.
 * Then eks comes back (the same etcd data, its API server and "kubelets", then its agent): the
 * agent pulls the cancels of the stale attempts and deletes their Jobs, and nothing it reports
 * about them changes the runs.
 *
 * Time is sped up as in test/node/e2e-lost-cluster.test.ts: a grace of 1 s (the control plane
 * still waits until the cluster is offline, 45 s without a heartbeat), agents beating every 3 s,
 * and the Cron Trigger fired by the test (no minute ticker) until it acts.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MlflowClient } from "../../proto/mlflow";
import { ensureK8sBinaries, GPU_RESOURCE } from "../../scripts/k8s/harness";
import { type Embedded, startEmbedded } from "../../scripts/local/embedded";
import { e2eApi, fireCronTrigger, waitFor as waitUntil } from "../support/e2e-api";
import { type K8sSite, startK8sSite, stepProjectInGit } from "./k8s-site";

const TOKEN = "hybrid-lost-token";
type SiteName = "eks" | "eks-2" | "ezmeral";

let dir: string;
let env: Embedded;
let mlflow: MlflowClient;
let project: { uri: string; version: string };
const sites: Partial<Record<SiteName, K8sSite>> = {};
const clusterIds: Partial<Record<SiteName, string>> = {};

const explain = () => `agent logs: ${Object.values(sites).map((s) => s?.agent.logFile)}`;
const e2e = e2eApi({ url: () => env.control.url, token: TOKEN, explain });
const api = e2e.call;
const waitFor = <T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 60_000) => waitUntil(what, fn, { timeoutMs, explain });
const site = (name: SiteName) => sites[name]!;
const nodeOf = async (runId: string, nodeId: string) => (await e2e.runOf(runId)).nodes.find((n: any) => n.nodeId === nodeId);

/**
 * How long `train`'s pods run. Short enough for its retry on eks-2 to end soon; long enough that
 * eks's pod, whose delay kwok starts anew when eks comes back, is still running when the agent
 * (started a few seconds after its cluster) pulls the cancel — so what ends it is the cancel.
 */
const TRAIN_DELAY = "30s";

/** A node of the step fixture; `delay` is how long KWOK keeps each of its pods running. */
const step = (id: string, cluster: string | Record<string, string>, delay: string, extra: Record<string, unknown> = {}) => ({
  id,
  project,
  image: "registry.example.test/steps/python:3.11",
  cluster,
  env: { PARALLELS_TEST_DELAY: delay },
  ...extra,
});
const gpuTrain = { resources: { cpu: "1", memory: "1Gi", gpu: 1 } };

/** The two runs on eks when it goes dark, and what their `train` was then. */
let retried: { runId: string; train: any };
let failing: { runId: string; train: any };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "parallels-hybrid-lost-"));
  const binDir = await ensureK8sBinaries({ log: (l) => console.log(l) });
  // No minute ticker: the test fires the Cron Trigger itself, once eks is offline.
  env = await startEmbedded({ stateDir: join(dir, "embedded"), adminToken: TOKEN, ports: "free", cronTriggers: false });
  mlflow = new MlflowClient({ trackingUri: env.mlflow.url });
  project = stepProjectInGit(dir);

  // One cluster after the other: API servers starting at once on 2 cores only slow each other.
  const common = { dir, binDir, env, api, extraAgentArgs: ["--heartbeat-seconds", "3"] };
  sites.ezmeral = await startK8sSite({ ...common, name: "ezmeral", kind: "ezmeral", gpu: false, labels: { site: "onprem", gpu: "false" } });
  sites.eks = await startK8sSite({ ...common, name: "eks", kind: "eks", gpu: true, labels: { site: "cloud", gpu: "true" } });
  sites["eks-2"] = await startK8sSite({ ...common, name: "eks-2", kind: "eks", gpu: true, labels: { site: "cloud", gpu: "true" } });
  for (const name of ["ezmeral", "eks", "eks-2"] as const) {
    // Placement ranks a cluster that has not reported its resources last: wait for every report.
    const c = await waitFor(`${name}'s agent to register and report its resources`, async () => {
      const body = (await api("GET", `/v1/clusters/${name}`)).body;
      return body.agent?.allocatable && body;
    });
    clusterIds[name] = c.id;
  }
}, 1_200_000);

afterAll(async () => {
  for (const s of Object.values(sites)) await s?.agent.stop();
  await env?.stop();
  for (const s of Object.values(sites)) await s?.k8s.stop();
  if (dir && !process.env.KEEP_E2E_STATE) rmSync(dir, { recursive: true, force: true });
});

describe("lost cluster on real API servers (KWOK stands in for kubelets running containers)", { timeout: 180_000 }, () => {
  it("lost cluster: two runs' train running on eks (one placed by its selector gpu=true, one naming eks), then eks's agent and whole cluster stop mid-train", async () => {
    const retriedId = await e2e.submit(
      "lost-retry",
      [
        step("prepare", "ezmeral", "0s"),
        step("train", { gpu: "true" }, TRAIN_DELAY, { inputs: { prepared: { node: "prepare" } }, ...gpuTrain }),
        step("report", "ezmeral", "0s", { inputs: { model: { node: "train" } } }),
      ],
      { onClusterLost: { policy: "retryElsewhere", grace: "1s" } },
    );
    const running = async (runId: string) => {
      const n = await nodeOf(runId, "train");
      return n.status === "running" && n.mlflowRunId && n;
    };
    retried = { runId: retriedId, train: await waitFor("the retryElsewhere run's train running", () => running(retriedId), 90_000) };
    // Ties go to the first name: eks, not eks-2 (both have 4 free GPUs).
    expect(retried.train.clusterId).toBe(clusterIds.eks);

    // Named, not selected: with one Job on eks, placement would now prefer eks-2.
    const failingId = await e2e.submit("lost-fail", [step("train", "eks", "600s", gpuTrain), step("report", "ezmeral", "0s", { inputs: { model: { node: "train" } } })], {
      onClusterLost: { policy: "fail", grace: "1s" },
    });
    failing = { runId: failingId, train: await waitFor("the fail run's train running", () => running(failingId)) };
    expect(failing.train.clusterId).toBe(clusterIds.eks);
    for (const runId of [retriedId, failingId]) expect((await site("eks").jobsOfRun(runId)).map((j) => j.metadata.labels["parallels.io/node"])).toEqual(["train"]);
    expect((await mlflow.getRun(retried.train.mlflowRunId)).info.status).toBe("RUNNING");

    // The agent and everything of its cluster at once (kwok first: no pod ends while it is down).
    await Promise.all([site("eks").agent.stop(), site("eks").k8s.halt()]);
    expect(site("eks").k8s.pids()).toEqual({});
    expect((await nodeOf(retriedId, "train")).status).toBe("running");
  });

  it("lost cluster, retryElsewhere and fail: once eks is offline past the grace, the Cron Trigger moves train to eks-2 as attempt 2 and fails the other run naming eks", async () => {
    await waitFor("eks offline", async () => (await api("GET", "/v1/clusters/eks")).body.status === "offline", 90_000);
    // The silence counts from the cluster's last word about the attempt too: fire the Cron
    // Trigger every 2 s, as its minute ticks would, until it has acted on both runs.
    await waitFor(
      "the Cron Trigger to act on both runs",
      async () => {
        await fireCronTrigger(env.control.url);
        const [a, b] = [await nodeOf(retried.runId, "train"), await nodeOf(failing.runId, "train")];
        if (a.attempt === 2 && b.status === "failed") return true;
        await new Promise((r) => setTimeout(r, 2000));
        return false;
      },
      60_000,
    );

    // retryElsewhere: attempt 2 on eks-2, its Job in eks-2's API server on the GPU pool.
    const moved = await nodeOf(retried.runId, "train");
    expect(moved).toMatchObject({ attempt: 2, clusterId: clusterIds["eks-2"] });
    expect(moved.message).toMatch(/^cluster "eks" lost \(no heartbeat since .*; onClusterLost retryElsewhere after 1s\): attempt 1 abandoned.*retried on cluster "eks-2" as attempt 2$/);
    const detail = (await api("GET", `/v1/runs/${retried.runId}/nodes/train`)).body;
    expect(detail.lostAttempts).toEqual([{ attempt: 1, clusterId: clusterIds.eks, since: expect.any(String), at: expect.any(String) }]);
    const [job] = await waitFor("train's Job in eks-2's API server", async () => {
      const jobs = await site("eks-2").jobsOfRun(retried.runId);
      return jobs.length > 0 && jobs;
    });
    expect(job.metadata.labels).toMatchObject({ "parallels.io/node": "train", "parallels.io/attempt": "2" });
    const pod = job.spec.template.spec;
    expect(pod.tolerations).toEqual(expect.arrayContaining([expect.objectContaining({ key: GPU_RESOURCE, operator: "Exists", effect: "NoSchedule" })]));
    expect(pod.containers.find((c: any) => c.resources?.limits?.[GPU_RESOURCE]).resources.limits[GPU_RESOURCE]).toBe("1");

    // fail: the node failed for good, naming the cluster; the run failed, report never ran.
    const failed = await e2e.finished(failing.runId, 10_000);
    expect(failed.status).toBe("failed");
    const byNode = Object.fromEntries(failed.nodes.map((n: any) => [n.nodeId, n]));
    expect(byNode.train).toMatchObject({ status: "failed", attempt: 1, clusterId: clusterIds.eks });
    expect(byNode.train.message).toMatch(/^cluster "eks" lost \(no heartbeat since .*; onClusterLost fail after 1s\): attempt 1 abandoned/);
    expect(byNode.report.status).toBe("skipped");
  });

  it("lost cluster, back again: eks's API server and kubelets restart on the same data, then its agent, which pulls the cancels of the stale attempts and deletes their Jobs", async () => {
    // Nothing deleted the Jobs while eks was dark: they are in its etcd, their pods still running.
    const back = await site("eks").k8s.restart();
    console.log(`[lost-cluster] eks's cluster back in ${(back / 1000).toFixed(1)} s`);
    for (const runId of [retried.runId, failing.runId]) expect(await site("eks").jobsOfRun(runId)).toHaveLength(1);
    await site("eks").restartAgent();
    await waitFor("eks online again", async () => (await api("GET", "/v1/clusters/eks")).body.status === "online");
    // The cancel deletes a Job with foreground propagation: gone once its pods are.
    await waitFor("both stale Jobs gone from eks's API server", async () => (await site("eks").jobsOfRun(retried.runId)).length === 0 && (await site("eks").jobsOfRun(failing.runId)).length === 0);
    // Stopped by the cancel, not ended by kwok: the stale attempts' MLflow runs end KILLED.
    for (const t of [retried.train, failing.train]) {
      await waitFor(`stale attempt's MLflow run ${t.mlflowRunId} KILLED`, async () => (await mlflow.getRun(t.mlflowRunId)).info.status === "KILLED", 30_000);
    }
    // What eks's agent reported about them changed nothing.
    expect(await nodeOf(failing.runId, "train")).toMatchObject({ status: "failed", attempt: 1 });
    expect(await nodeOf(retried.runId, "train")).toMatchObject({ attempt: 2, clusterId: clusterIds["eks-2"] });
  });

  it("lost cluster, retryElsewhere: the run succeeds with train's attempt 2 on eks-2; MLflow holds both attempts under one parent, the stale one tagged parallels.lost", async () => {
    const run = await e2e.finished(retried.runId, 90_000);
    expect(run.status, JSON.stringify(run.nodes)).toBe("succeeded");
    const byNode = Object.fromEntries(run.nodes.map((n: any) => [n.nodeId, n]));
    expect(byNode.train).toMatchObject({ status: "succeeded", attempt: 2, clusterId: clusterIds["eks-2"] });
    expect(byNode.report).toMatchObject({ status: "succeeded", clusterId: clusterIds.ezmeral });
    expect(byNode.train.mlflowRunId).not.toBe(retried.train.mlflowRunId);

    const stale = await mlflow.getRun(retried.train.mlflowRunId);
    expect(stale.data.tags["parallels.lost"]).toMatch(/^cluster "eks" lost .*retried on cluster "eks-2" as attempt 2$/);
    const current = await mlflow.getRun(byNode.train.mlflowRunId);
    expect(current.info.status).toBe("FINISHED");
    expect(current.data.tags["parallels.lost"]).toBeUndefined();
    for (const r of [stale, current]) expect(r.data.tags["mlflow.parentRunId"]).toBe(run.mlflowRunId);
  });
});
