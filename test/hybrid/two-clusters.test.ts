/**
 * One DAG across two Kubernetes clusters (issue 10), every component real but the kubelets: the
 * control plane (`wrangler dev`), nats-server and `mlflow server` of the embedded default; two
 * clusters of our own on the KWOK harness, each with its own etcd, API server, controllers,
 * nodes and credentials — `eks` (cloud: CPU nodes and a GPU pool tainted `nvidia.com/gpu`) and
 * `ezmeral` (on-prem: CPU only). Each cluster's agent is installed with the `helm` line
 * `POST /v1/clusters` prints plus its values profile (charts/parallels-agent/values-*.yaml), and
 * runs as a host process holding only a token of the chart's ServiceAccount in its own cluster
 * and its own NATS credentials. KWOK stands in for kubelets running containers.
 *
 * The pipeline: `prepare` on `ezmeral` (partitioned 4 ways) → `train` on whichever cluster has
 * the labels `gpu=true` and free GPUs (a selector, so placement decides: `eks`) → `report` on
 * `ezmeral`; data passes between the clusters through MLflow artifacts, and MLflow shows one
 * parent with the node and partition runs beneath it. The clusters' set-up is k8s-site.ts's.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MlflowClient } from "../../proto/mlflow";
import { ensureK8sBinaries } from "../../scripts/k8s/harness";
import { GPU_RESOURCE } from "../../scripts/k8s/nodes";
import { type Embedded, startEmbedded } from "../../scripts/local/embedded";
import { e2eApi, waitFor as waitUntil } from "../support/e2e-api";
import { AGENT_NAMESPACE as NS } from "./agent-chart";
import { type K8sSite, startK8sSite, stepProjectInGit } from "./k8s-site";

const TOKEN = "hybrid-admin-token";
type SiteName = "eks" | "ezmeral";

let dir: string;
let env: Embedded;
let mlflow: MlflowClient;
let project: { uri: string; version: string };
let inputRun: string;
const sites: Partial<Record<SiteName, K8sSite>> = {};

const explain = () => `agent logs: ${Object.values(sites).map((s) => s?.agent.logFile)}`;
const e2e = e2eApi({ url: () => env.control.url, token: TOKEN, explain });
const api = e2e.call;
const waitFor = <T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 120_000) => waitUntil(what, fn, { timeoutMs, explain });
const runOf = e2e.runOf;
const finished = (id: string, timeoutMs = 180_000) => e2e.finished(id, timeoutMs);
const site = (name: SiteName) => sites[name]!;
const jobsOfRun = (name: SiteName, runId: string) => site(name).jobsOfRun(runId);

/** A node of the step fixture, from git; `delay` is how long KWOK keeps each of its pods running. */
const step = (id: string, cluster: string | Record<string, string>, delay: string, extra: Record<string, unknown> = {}) => ({
  id,
  project,
  image: "registry.example.test/steps/python:3.11",
  cluster,
  env: { PARALLELS_TEST_DELAY: delay },
  ...extra,
});

const submit = e2e.submit;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "parallels-hybrid-two-"));
  const binDir = await ensureK8sBinaries({ log: (l) => console.log(l) });
  env = await startEmbedded({ stateDir: join(dir, "embedded"), adminToken: TOKEN, ports: "free" });
  mlflow = new MlflowClient({ trackingUri: env.mlflow.url });

  project = stepProjectInGit(dir);
  const { experimentId } = await mlflow.getOrCreateExperiment("hybrid-inputs");
  const run = await mlflow.createRun({ experimentId, runName: "records" });
  for (let i = 0; i < 8; i++) await mlflow.uploadArtifact(run.info.runId, `records/r-${i}.txt`, `record ${i}`, "text/plain");
  await mlflow.terminateRun(run.info.runId, "FINISHED");
  inputRun = run.info.runId;

  // One cluster after the other: two API servers starting at once on 2 cores only slow each other.
  const common = { dir, binDir, env, api };
  sites.ezmeral = await startK8sSite({ ...common, name: "ezmeral", kind: "ezmeral", gpu: false, labels: { site: "onprem", gpu: "false" } });
  sites.eks = await startK8sSite({ ...common, name: "eks", kind: "eks", gpu: true, labels: { site: "cloud", gpu: "true" } });
  for (const name of ["ezmeral", "eks"] as const) {
    await waitFor(`${name}'s agent to register and report its resources`, async () => (await api("GET", `/v1/clusters/${name}`)).body.agent?.allocatable);
  }
}, 1_200_000);

afterAll(async () => {
  for (const s of Object.values(sites)) await s?.agent.stop();
  await env?.stop();
  for (const s of Object.values(sites)) await s?.k8s.stop();
  if (dir && !process.env.KEEP_E2E_STATE) rmSync(dir, { recursive: true, force: true });
});

describe("one DAG across an EKS-like and an Ezmeral-like cluster (KWOK stands in for kubelets running containers)", { timeout: 300_000 }, () => {
  it("each agent reports its own cluster: GPUs on eks only", async () => {
    const eks = (await api("GET", "/v1/clusters/eks")).body;
    const ezmeral = (await api("GET", "/v1/clusters/ezmeral")).body;
    expect([eks.status, ezmeral.status]).toEqual(["online", "online"]);
    expect(eks.agent.allocatable.gpu).toBeGreaterThan(0);
    expect(ezmeral.agent.allocatable.gpu ?? 0).toBe(0);
    expect(eks.id).not.toBe(ezmeral.id);
  });

  it("prepare on ezmeral (4 partitions) → train on the GPU pool of eks (selector gpu=true) → report on ezmeral: each Job in the right API server; one MLflow parent above it all", async () => {
    const id = await submit("hybrid-pipeline", [
      step("prepare", "ezmeral", "1s", { partition: { by: "hash", input: "records", partitions: 4 }, parallelism: 4, inputs: { records: { run: inputRun } } }),
      step("train", { gpu: "true" }, "1s", { inputs: { prepared: { node: "prepare" } }, resources: { cpu: "1", memory: "1Gi", gpu: 1 } }),
      step("report", "ezmeral", "0s", { inputs: { model: { node: "train" } } }),
    ]);
    const run = await finished(id);
    expect(run.status, JSON.stringify(run.nodes)).toBe("succeeded");
    const byNode = Object.fromEntries(run.nodes.map((n: any) => [n.nodeId, n]));
    expect(byNode.prepare.partitions).toMatchObject({ total: 4, done: 4, failed: 0 });

    // Where each Job was made: prepare and report in ezmeral's API server, train in eks's, on the GPU pool.
    const ezJobs = await jobsOfRun("ezmeral", id);
    const eksJobs = await jobsOfRun("eks", id);
    expect(ezJobs.map((j) => j.metadata.labels["parallels.io/node"]).sort()).toEqual(["prepare", "report"]);
    expect(eksJobs.map((j) => j.metadata.labels["parallels.io/node"])).toEqual(["train"]);
    const prepareJob = ezJobs.find((j) => j.metadata.labels["parallels.io/node"] === "prepare");
    expect(prepareJob.spec).toMatchObject({ completionMode: "Indexed", completions: 4 });
    const trainPod = eksJobs[0].spec.template.spec;
    expect(trainPod.tolerations).toEqual(expect.arrayContaining([expect.objectContaining({ key: GPU_RESOURCE, operator: "Exists", effect: "NoSchedule" })]));
    expect(trainPod.containers.find((c: any) => c.resources?.limits?.[GPU_RESOURCE]).resources.limits[GPU_RESOURCE]).toBe("1");
    const trainPods = JSON.parse(await site("eks").k8s.kubectl(["-n", NS, "get", "pods", "-l", `batch.kubernetes.io/job-name=${eksJobs[0].metadata.name}`, "-o", "json"])).items as any[];
    expect(trainPods.map((p) => p.spec.nodeName)).toEqual(["kwok-gpu-0"]);

    // MLflow: one parent, the three node runs beneath it (each tagged with its cluster's backend), four partition runs beneath prepare's.
    await waitFor("the parent run FINISHED", async () => (await mlflow.getRun(run.mlflowRunId)).info.status === "FINISHED", 30_000);
    const parent = await mlflow.getRun(run.mlflowRunId);
    const children = await mlflow.childRuns([parent.info.experimentId], parent.info.runId);
    expect(children.map((c) => c.data.tags["parallels.nodeId"]).sort()).toEqual(["prepare", "report", "train"]);
    expect(new Set(children.map((c) => c.info.status))).toEqual(new Set(["FINISHED"]));
    const prepareRun = children.find((c) => c.data.tags["parallels.nodeId"] === "prepare")!;
    expect(await mlflow.childRuns([parent.info.experimentId], prepareRun.info.runId)).toHaveLength(4);
  });

  it("cancel of a run with steps on both clusters stops the Jobs in both API servers", async () => {
    const id = await submit("hybrid-cancel", [
      step("onprem", "ezmeral", "600s", { partition: { by: "broadcast", input: "records" }, parallelism: 2, inputs: { records: { run: inputRun } } }),
      step("cloud", { gpu: "true" }, "600s", { resources: { gpu: 1 } }),
    ]);
    await waitFor("both steps running", async () => (await runOf(id)).nodes.every((n: any) => n.partitions?.running > 0));
    expect((await jobsOfRun("ezmeral", id)).length).toBe(1);
    expect((await jobsOfRun("eks", id)).length).toBe(1);
    expect((await api("POST", `/v1/runs/${id}/cancel`)).status).toBe(202);
    const run = await finished(id, 90_000);
    expect(run.status).toBe("cancelled");
    await waitFor("the Jobs gone from both clusters", async () => (await jobsOfRun("ezmeral", id)).length === 0 && (await jobsOfRun("eks", id)).length === 0, 60_000);
  });
});
