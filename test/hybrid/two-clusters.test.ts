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
 * parent with the node and partition runs beneath it.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MlflowClient } from "../../proto/mlflow";
import { ensureK8sBinaries, type K8sCluster, startK8sCluster } from "../../scripts/k8s/harness";
import { DEFAULT_NODES, GPU_RESOURCE } from "../../scripts/k8s/nodes";
import { type AgentProcess, startAgent } from "../../scripts/local/agent";
import { ROOT } from "../../scripts/local/control-plane";
import { type Embedded, startEmbedded } from "../../scripts/local/embedded";
import { e2eApi, waitFor as waitUntil } from "../support/e2e-api";

const TOKEN = "hybrid-admin-token";
const NS = "parallels";

interface Site {
  name: "eks" | "ezmeral";
  k8s: K8sCluster;
  agent: AgentProcess;
  agentArgs: string[];
}

let dir: string;
let env: Embedded;
let mlflow: MlflowClient;
let repo: string;
let commit: string;
let inputRun: string;
const sites: Partial<Record<Site["name"], Site>> = {};

const explain = () => `agent logs: ${Object.values(sites).map((s) => s?.agent.logFile)}`;
const e2e = e2eApi({ url: () => env.control.url, token: TOKEN, explain });
const api = e2e.call;
const waitFor = <T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 120_000) => waitUntil(what, fn, { timeoutMs, explain });
const runOf = e2e.runOf;
const finished = (id: string, timeoutMs = 180_000) => e2e.finished(id, timeoutMs);
const site = (name: Site["name"]) => sites[name]!;
const jobsOfRun = async (name: Site["name"], runId: string) =>
  (JSON.parse(await site(name).k8s.kubectl(["-n", NS, "get", "jobs", "-l", `parallels.io/run=${runId}`, "-o", "json"])) as { items: any[] }).items;

/** A node of the step fixture, from git; `delay` is how long KWOK keeps each of its pods running. */
const step = (id: string, cluster: string | Record<string, string>, delay: string, extra: Record<string, unknown> = {}) => ({
  id,
  project: { uri: `file://${repo}`, version: commit },
  image: "registry.example.test/steps/python:3.11",
  cluster,
  env: { PARALLELS_TEST_DELAY: delay },
  ...extra,
});

const submit = e2e.submit;

/**
 * A cluster as its users would set it up: registered with the API, the chart installed with the
 * printed `helm` line and the site's values profile, and the agent holding a token of the chart's
 * ServiceAccount (so the chart's Role is all it can do) — as a host process, there being no kubelet.
 */
async function startSite(name: Site["name"], binDir: string, labels: Record<string, string>): Promise<Site> {
  const nodes = name === "eks" ? DEFAULT_NODES : DEFAULT_NODES.filter((n) => !n.allocatable[GPU_RESOURCE]);
  const k8s = await startK8sCluster({ name, runDir: join(dir, name, "cluster"), binDir, nodes });
  const cluster = await api("POST", "/v1/clusters", { name, kind: name, labels });
  expect(cluster.status, JSON.stringify(cluster.body)).toBe(201);
  const line = (cluster.body.bootstrap.helmInstall as string).replace(" --set-file ", ` -f charts/parallels-agent/values-${name}.yaml --set-file `);
  expect(line).toContain(`values-${name}.yaml`);
  const helm = spawnSync("sh", [], {
    cwd: ROOT,
    input: line,
    encoding: "utf8",
    env: {
      ...process.env,
      PATH: `${k8s.binDir}:${process.env.PATH}`,
      KUBECONFIG: k8s.kubeconfigPath,
      MLFLOW_TRACKING_URI: env.mlflow.url,
      HELM_CACHE_HOME: join(dir, name, "helm/cache"),
      HELM_CONFIG_HOME: join(dir, name, "helm/config"),
      HELM_DATA_HOME: join(dir, name, "helm/data"),
    },
  });
  expect(helm.status, `${helm.stdout}\n${helm.stderr}`).toBe(0);
  expect(helm.stdout).toContain("STATUS: deployed");

  const token = (await k8s.kubectl(["-n", NS, "create", "token", "parallels-agent", "--duration=1h"])).trim();
  const kubeconfig = join(dir, name, "agent.kubeconfig");
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name, cluster: { server: k8s.apiUrl, "certificate-authority": k8s.caFile } }],
      users: [{ name: "agent", user: { token } }],
      contexts: [{ name: "agent", context: { cluster: name, user: "agent", namespace: NS } }],
      "current-context": "agent",
    }),
    { mode: 0o600 },
  );
  const agentArgs = [
    "--executor",
    "kubernetes",
    "--kubeconfig",
    kubeconfig,
    "--namespace",
    NS,
    "--agent-image",
    "registry.example.test/parallels-agent:test",
    "--credentials-secret",
    `${NS}/parallels-agent-credentials`,
    "--cluster-name",
    name,
    "--pull-expires-seconds",
    "5",
  ];
  const agent = await startAgent({
    controlPlaneUrl: env.control.url,
    mlflowUrl: env.mlflow.url,
    stateDir: join(dir, name, "agent"),
    projectsRoot: dir,
    bootstrapToken: cluster.body.bootstrap.token,
    extraArgs: agentArgs,
  });
  return { name, k8s, agent, agentArgs };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "parallels-hybrid-two-"));
  const binDir = await ensureK8sBinaries({ log: (l) => console.log(l) });
  env = await startEmbedded({ stateDir: join(dir, "embedded"), adminToken: TOKEN, ports: "free" });
  mlflow = new MlflowClient({ trackingUri: env.mlflow.url });

  repo = join(dir, "step.git");
  cpSync(join(ROOT, "test/fixtures/projects/step"), repo, { recursive: true });
  const git = (...args: string[]) => execFileSync("git", ["-c", "user.email=t@example.test", "-c", "user.name=t", ...args], { cwd: repo, encoding: "utf8" }).trim();
  git("init", "-q");
  git("add", ".");
  git("commit", "-q", "-m", "step");
  commit = git("rev-parse", "HEAD");
  const { experimentId } = await mlflow.getOrCreateExperiment("hybrid-inputs");
  const run = await mlflow.createRun({ experimentId, runName: "records" });
  for (let i = 0; i < 8; i++) await mlflow.uploadArtifact(run.info.runId, `records/r-${i}.txt`, `record ${i}`, "text/plain");
  await mlflow.terminateRun(run.info.runId, "FINISHED");
  inputRun = run.info.runId;

  // One cluster after the other: two API servers starting at once on 2 cores only slow each other.
  sites.ezmeral = await startSite("ezmeral", binDir, { site: "onprem", gpu: "false" });
  sites.eks = await startSite("eks", binDir, { site: "cloud", gpu: "true" });
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
