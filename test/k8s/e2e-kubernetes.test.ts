/**
 * The product on Kubernetes, end to end: the real control plane (`wrangler dev`), nats-server and
 * `mlflow server` of the embedded default; a cluster of our own on the KWOK harness (its API
 * server is restarted in one test, so not the suite's shared one); the agent installed with the
 * `helm` line `POST /v1/clusters` prints, run as it is printed — and the agent itself as a host
 * process holding only a token of the chart's own ServiceAccount (TokenRequest API), so its Role
 * is what it can do. KWOK stands in for kubelets running containers: the steps' `PARALLELS_TEST_*`
 * variables say how long their pods run and which indexes fail. The site's proxy (a Secret with a
 * URL holding a password) and CA bundle (a ConfigMap) are set, to see the pods carry them; no
 * traffic goes to that proxy (KWOK runs no container).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MlflowClient } from "../../proto/mlflow";
import { type K8sCluster, startK8sCluster } from "../../scripts/k8s/harness";
import { type AgentProcess, startAgent } from "../../scripts/local/agent";
import { ROOT } from "../../scripts/local/control-plane";
import { type Embedded, startEmbedded } from "../../scripts/local/embedded";

const TOKEN = "e2e-k8s-admin-token";
const NS = "parallels";
let k8s: K8sCluster;
let env: Embedded;
let mlflow: MlflowClient;
let agent: AgentProcess;
let dir: string;
let repo: string;
let commit: string;
let kubeconfig: string;
let inputRun: string;

async function api(method: string, path: string, body?: unknown) {
  const res = await fetch(env.control.url + path, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (agent log: ${agent?.logFile})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const runOf = async (id: string) => (await api("GET", `/v1/runs/${id}`)).body;
const finished = (id: string, timeoutMs = 120_000) => waitFor(`run ${id} to finish`, async () => ["succeeded", "failed", "cancelled"].includes((await runOf(id)).status) && runOf(id), timeoutMs);
const kubectlJson = async <T>(...args: string[]): Promise<T> => JSON.parse(await k8s.kubectl(["-n", NS, ...args, "-o", "json"])) as T;
const jobsOfRun = async (runId: string) => (await kubectlJson<{ items: any[] }>("get", "jobs", "-l", `parallels.io/run=${runId}`)).items;
const podsOfJob = async (job: string) => (await kubectlJson<{ items: any[] }>("get", "pods", "-l", `batch.kubernetes.io/job-name=${job}`)).items;

/** A node of the step fixture, from git; `delay` is how long KWOK keeps each of its pods running. */
const step = (id: string, delay: string, extra: Record<string, unknown> = {}) => ({
  id,
  project: { uri: `file://${repo}`, version: commit },
  image: "registry.example.test/steps/python:3.11",
  cluster: "kwok",
  env: { PARALLELS_TEST_DELAY: delay },
  ...extra,
});

async function submit(name: string, nodes: unknown[]) {
  expect((await api("PUT", `/v1/dags/${name}`, { name, nodes })).status).toBeLessThan(300);
  const run = await api("POST", "/v1/runs", { dag: name });
  expect(run.status).toBe(201);
  return run.body.id as string;
}

const agentArgs = () => [
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
  "--pull-expires-seconds",
  "5",
  "--work-proxy-secret",
  "site-proxy",
  "--work-ca-bundle",
  "configmap/site-ca/bundle.pem",
];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "parallels-e2e-k8s-"));
  [k8s, env] = await Promise.all([startK8sCluster({ name: "e2e", runDir: join(dir, "cluster") }), startEmbedded({ stateDir: join(dir, "embedded"), adminToken: TOKEN, ports: "free" })]);
  mlflow = new MlflowClient({ trackingUri: env.mlflow.url });

  // The projects come from git on a cluster: the step fixture in a repository of its own.
  repo = join(dir, "step.git");
  cpSync(join(ROOT, "test/fixtures/projects/step"), repo, { recursive: true });
  const git = (...args: string[]) => execFileSync("git", ["-c", "user.email=t@example.test", "-c", "user.name=t", ...args], { cwd: repo, encoding: "utf8" }).trim();
  git("init", "-q");
  git("add", ".");
  git("commit", "-q", "-m", "step");
  commit = git("rev-parse", "HEAD");
  // Twenty files to partition, as an MLflow run's artifacts.
  const { experimentId } = await mlflow.getOrCreateExperiment("inputs");
  const run = await mlflow.createRun({ experimentId, runName: "images" });
  for (let i = 0; i < 20; i++) await mlflow.uploadArtifact(run.info.runId, `images/img-${String(i).padStart(2, "0")}.txt`, `image ${i}`, "text/plain");
  await mlflow.terminateRun(run.info.runId, "FINISHED");
  inputRun = run.info.runId;

  // The cluster, and its agent installed with the helm line the API prints, run as printed (from stdin: the token stays off every command line).
  const cluster = await api("POST", "/v1/clusters", { name: "kwok", kind: "generic", labels: { site: "kwok" } });
  expect(cluster.status).toBe(201);
  const helm = spawnSync("sh", [], {
    cwd: ROOT,
    input: cluster.body.bootstrap.helmInstall,
    encoding: "utf8",
    env: {
      ...process.env,
      PATH: `${k8s.binDir}:${process.env.PATH}`,
      KUBECONFIG: k8s.kubeconfigPath,
      MLFLOW_TRACKING_URI: env.mlflow.url,
      HELM_CACHE_HOME: join(dir, "helm/cache"),
      HELM_CONFIG_HOME: join(dir, "helm/config"),
      HELM_DATA_HOME: join(dir, "helm/data"),
    },
  });
  expect(helm.status, `${helm.stdout}\n${helm.stderr}`).toBe(0);
  expect(helm.stdout).toContain("STATUS: deployed");

  // The site's proxy (its URL with a password, so in a Secret) and CA bundle, from stdin: off every command line.
  await k8s.kubectl(["-n", NS, "apply", "-f", "-"], {
    input: JSON.stringify({
      apiVersion: "v1",
      kind: "List",
      items: [
        { apiVersion: "v1", kind: "Secret", metadata: { name: "site-proxy" }, stringData: { HTTPS_PROXY: "http://e2e:proxy-pw@proxy.invalid:3128" } },
        { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "site-ca" }, data: { "bundle.pem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n" } },
      ],
    }),
  });

  // The agent, with nothing but a token of the chart's ServiceAccount.
  const token = (await k8s.kubectl(["-n", NS, "create", "token", "parallels-agent", "--duration=1h"])).trim();
  kubeconfig = join(dir, "agent.kubeconfig");
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "kwok", cluster: { server: k8s.apiUrl, "certificate-authority": k8s.caFile } }],
      users: [{ name: "agent", user: { token } }],
      contexts: [{ name: "agent", context: { cluster: "kwok", user: "agent", namespace: NS } }],
      "current-context": "agent",
    }),
    { mode: 0o600 },
  );
  agent = await startAgent({
    controlPlaneUrl: env.control.url,
    mlflowUrl: env.mlflow.url,
    stateDir: join(dir, "agent"),
    projectsRoot: dir,
    bootstrapToken: cluster.body.bootstrap.token,
    extraArgs: agentArgs(),
  });
  await waitFor("the agent to register and beat", async () => (await api("GET", "/v1/clusters/kwok")).body.agent?.kubernetesVersion);
}, 900_000);

afterAll(async () => {
  await agent?.stop();
  await env?.stop();
  await k8s?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("Kubernetes, end to end (KWOK stands in for kubelets running containers)", { timeout: 240_000 }, () => {
  it("the agent's heartbeat reports the cluster's Kubernetes version and allocatable resources; its credentials are in the chart's Secret", async () => {
    const cluster = (await api("GET", "/v1/clusters/kwok")).body;
    expect(cluster.status).toBe("online");
    expect(cluster.agent).toMatchObject({ kubernetesVersion: "v1.34.4", allocatable: { cpu: "64", gpu: 4 } });
    const secret = await kubectlJson<{ data?: Record<string, string> }>("get", "secret", "parallels-agent-credentials");
    expect(JSON.parse(Buffer.from(secret.data!["credentials.json"]!, "base64").toString()).clusterId).toBe(cluster.id);
  });

  it("runs a DAG of three nodes, one partitioned 20 ways with parallelism 5: counters move while it runs; MLflow holds the parent, node and partition runs", async () => {
    const id = await submit("kwok-pipeline", [
      step("prep", "1s", { partition: { by: "object", input: "images" }, parallelism: 5, inputs: { images: { run: inputRun } } }),
      step("train", "1s", { inputs: { prepared: { node: "prep" } }, resources: { cpu: "2", memory: "1Gi" } }),
      step("report", "0s", { after: ["train"] }),
    ]);
    const seen = new Set<number>();
    let run = await runOf(id);
    while (!["succeeded", "failed", "cancelled"].includes(run.status)) {
      const prep = run.nodes.find((n: any) => n.nodeId === "prep");
      if (prep.status === "running") seen.add(prep.partitions.done);
      await new Promise((r) => setTimeout(r, 150));
      run = await runOf(id);
    }
    expect(run.status, JSON.stringify(run.nodes)).toBe("succeeded");
    expect(
      [...seen].some((d) => d > 0 && d < 20),
      `partitions done seen while running: ${[...seen]}`,
    ).toBe(true);
    expect(run.nodes.find((n: any) => n.nodeId === "prep").partitions).toEqual({ total: 20, done: 20, failed: 0, running: 0 });

    // The Jobs, made through the agent's ServiceAccount and accepted by the real API server.
    const jobs = await jobsOfRun(id);
    expect(jobs.map((j) => j.metadata.labels["parallels.io/node"]).sort()).toEqual(["prep", "report", "train"]);
    const prepJob = jobs.find((j) => j.metadata.labels["parallels.io/node"] === "prep");
    expect(prepJob.spec).toMatchObject({ completionMode: "Indexed", completions: 20, parallelism: 5 });
    expect((await podsOfJob(prepJob.metadata.name)).length).toBe(20);
    // Behind the site's proxy: every container of the pods carries the proxy from its Secret (no URL in the spec) and the CA bundle mounted.
    const template = prepJob.spec.template.spec;
    expect(template.volumes).toContainEqual({ name: "parallels-ca", configMap: { name: "site-ca", items: [{ key: "bundle.pem", path: "ca.crt" }], defaultMode: 420 } });
    for (const c of [...template.initContainers, ...template.containers]) {
      const env = new Map<string, any>(c.env.map((e: any) => [e.name, e]));
      expect(env.get("HTTPS_PROXY")?.valueFrom, c.name).toEqual({ secretKeyRef: { name: "site-proxy", key: "HTTPS_PROXY", optional: true } });
      expect(env.get("no_proxy")?.value, c.name).toContain(".svc,.cluster.local,$(KUBERNETES_SERVICE_HOST)");
      expect(env.get("NODE_EXTRA_CA_CERTS")?.value, c.name).toBe("/etc/parallels/ca/ca.crt");
      expect(c.volumeMounts, c.name).toContainEqual({ name: "parallels-ca", mountPath: "/etc/parallels/ca", readOnly: true });
    }
    expect(JSON.stringify(prepJob)).not.toContain("proxy-pw");

    // MLflow: one parent (the API names it), a run per node beneath it, 20 partition runs beneath prep's.
    const parent = await mlflow.getRun(run.mlflowRunId);
    expect(parent.data.tags["parallels.role"]).toBe("dag-run");
    await waitFor("the parent run FINISHED", async () => (await mlflow.getRun(run.mlflowRunId)).info.status === "FINISHED", 30_000);
    const children = await mlflow.childRuns([parent.info.experimentId], parent.info.runId);
    expect(children.map((c) => c.data.tags["parallels.nodeId"]).sort()).toEqual(["prep", "report", "train"]);
    for (const c of children) {
      expect(c.info.status).toBe("FINISHED");
      expect(c.data.tags).toMatchObject({ "mlflow.project.backend": "kubernetes", "mlflow.docker.image.uri": "registry.example.test/steps/python:3.11", "mlflow.source.git.commit": commit });
    }
    const prepRun = children.find((c) => c.data.tags["parallels.nodeId"] === "prep")!;
    const partitions = await mlflow.childRuns([parent.info.experimentId], prepRun.info.runId);
    expect(partitions).toHaveLength(20);
    expect(new Set(partitions.map((p) => p.info.status))).toEqual(new Set(["FINISHED"]));
  });

  it("a caching node (cache: true) run again with the same inputs is cached from the first run: no Job, its MLflow run points at the first's outputs", async () => {
    const first = await submit("kwok-cache", [step("labels", "0s", { cache: true, partition: { by: "object", input: "images" }, parallelism: 4, inputs: { images: { run: inputRun } } })]);
    const ran = await finished(first);
    expect(ran.status, JSON.stringify(ran.nodes)).toBe("succeeded");
    expect(await jobsOfRun(first)).toHaveLength(1);
    const again = await api("POST", "/v1/runs", { dag: "kwok-cache" });
    const cached = await finished(again.body.id);
    expect(cached.status, JSON.stringify(cached.nodes)).toBe("succeeded");
    const node = cached.nodes[0];
    const firstNode = ran.nodes[0];
    expect(node.status).toBe("cached");
    expect(node.cachedFrom).toEqual({ runId: first, nodeRunId: `${first}-labels`, mlflowRunId: firstNode.mlflowRunId });
    expect(await jobsOfRun(again.body.id)).toEqual([]);
    const tags = (await mlflow.getRun(node.mlflowRunId)).data.tags;
    expect(tags).toMatchObject({ "parallels.cachedFrom": `${first}/${node.cachedFrom.nodeRunId}`, "parallels.outputsFrom": firstNode.mlflowRunId });
  });

  it("a failing index is retried alone (backoffLimitPerIndex), then fails the node with its index and exit code; no further attempt", async () => {
    const id = await submit("kwok-failing", [
      step("flaky", "1s", {
        partition: { by: "broadcast", input: "images" },
        parallelism: 6,
        retries: 1,
        inputs: { images: { run: inputRun } },
        env: { PARALLELS_TEST_DELAY: "1s", PARALLELS_TEST_FAIL_INDEX: "3", PARALLELS_TEST_EXIT_CODE: "42" },
      }),
    ]);
    const run = await finished(id);
    expect(run.status).toBe("failed");
    const node = run.nodes[0];
    expect(node).toMatchObject({ status: "failed", attempt: 1, partitions: { total: 6, done: 5, failed: 1 } });
    expect(node.message).toMatch(/partition 3 exited with code 42/);
    const [job] = await jobsOfRun(id);
    const perIndex = new Map<string, number>();
    for (const p of await podsOfJob(job.metadata.name)) {
      const i = p.metadata.annotations["batch.kubernetes.io/job-completion-index"];
      perIndex.set(i, (perIndex.get(i) ?? 0) + 1);
    }
    // Index 3 ran twice (its one retry), every other index once.
    expect(Object.fromEntries(perIndex)).toEqual({ "0": 1, "1": 1, "2": 1, "3": 2, "4": 1, "5": 1 });
  });

  it("a resumed run runs only the partition that failed: a Job of one index, which is partition 3, continuing the old node run; the node counts all six", async () => {
    const fan = step("fan", "1s", {
      partition: { by: "broadcast", input: "images" },
      parallelism: 6,
      retries: 0,
      inputs: { images: { run: inputRun } },
      env: { PARALLELS_TEST_DELAY: "1s", PARALLELS_TEST_FAIL_INDEX: "3", PARALLELS_TEST_EXIT_CODE: "42" },
    });
    const id = await submit("kwok-resume", [fan, step("after", "0s", { inputs: { fanned: { node: "fan" } } })]);
    const failed = await finished(id);
    expect(failed.status, JSON.stringify(failed.nodes)).toBe("failed");
    expect((await api("GET", `/v1/runs/${id}/nodes/fan`)).body).toMatchObject({ status: "failed", failedPartitions: "3" });

    const resumed = await api("POST", `/v1/runs/${id}/resume`);
    expect(resumed.status).toBe(201);
    const run = await finished(resumed.body.id);
    // KWOK's knob fails the Job's index 3, which the resumed run's Job does not have (its only
    // index is partition 3): the stand-in for a step that now succeeds.
    expect(run.status, JSON.stringify(run.nodes)).toBe("succeeded");
    expect(run.nodes.find((n: any) => n.nodeId === "fan")).toMatchObject({ status: "succeeded", partitions: { total: 6, done: 6, failed: 0 } });
    const job = (await jobsOfRun(resumed.body.id)).find((j) => j.metadata.labels["parallels.io/node"] === "fan");
    expect(job.spec).toMatchObject({ completionMode: "Indexed", completions: 1, parallelism: 1 });
    expect(JSON.parse(job.spec.template.metadata.annotations["parallels.io/pod-attempt"])).toMatchObject({ partitions: 6, ran: [3] });
    expect((await podsOfJob(job.metadata.name)).length).toBe(1);

    // MLflow: the new node run continues the old one, with a nested run for partition 3 only.
    const parent = await mlflow.getRun(run.mlflowRunId);
    const children = await mlflow.childRuns([parent.info.experimentId], parent.info.runId);
    const now = children.find((c) => c.data.tags["parallels.nodeId"] === "fan")!;
    expect(now.data.tags).toMatchObject({ "parallels.continues": `${id}/${id}-fan`, "parallels.partitions.ran": "3" });
    const old = await mlflow.getRun(now.data.tags["parallels.outputsFrom"]!);
    expect(old.data.tags).toMatchObject({ "parallels.nodeId": "fan", "parallels.partitions.failed": "3" });
    const partitions = await mlflow.childRuns([parent.info.experimentId], now.info.runId);
    expect(partitions.map((p) => [p.data.tags["parallels.partition.index"], p.info.status])).toEqual([["3", "FINISHED"]]);
  });

  it("cancel deletes the Job and its pods; the run is cancelled", async () => {
    const id = await submit("kwok-cancel", [step("long", "600s", { partition: { by: "broadcast", input: "images" }, parallelism: 3, inputs: { images: { run: inputRun } } })]);
    await waitFor("the step running", async () => (await runOf(id)).nodes[0].partitions.running === 3);
    const [job] = await jobsOfRun(id);
    expect((await api("POST", `/v1/runs/${id}/cancel`)).status).toBe(202);
    const run = await finished(id, 60_000);
    expect(run.status).toBe("cancelled");
    expect(await jobsOfRun(id)).toEqual([]);
    expect(await podsOfJob(job.metadata.name)).toEqual([]);
  });

  it("the agent SIGKILLed mid-run and started again adopts its Jobs without making others", async () => {
    const id = await submit("kwok-agent-kill", [
      step("slow", "6s", { partition: { by: "broadcast", input: "images" }, parallelism: 2, inputs: { images: { run: inputRun } } }),
      step("after", "1s", { after: ["slow"] }),
    ]);
    await waitFor("the step running", async () => (await runOf(id)).nodes.find((n: any) => n.nodeId === "slow").partitions.running > 0);
    await agent.kill();
    agent = await startAgent({ controlPlaneUrl: env.control.url, mlflowUrl: env.mlflow.url, stateDir: join(dir, "agent"), projectsRoot: dir, extraArgs: agentArgs() });
    const run = await finished(id);
    expect(run.status).toBe("succeeded");
    expect(run.nodes.every((n: any) => n.attempt === 1)).toBe(true);
    expect((await jobsOfRun(id)).length).toBe(2);
  });

  it("an API server restart mid-run is survived: the watches pick up where they were", async () => {
    const id = await submit("kwok-apiserver-restart", [step("steady", "8s", { partition: { by: "broadcast", input: "images" }, parallelism: 2, inputs: { images: { run: inputRun } } })]);
    await waitFor("the step running", async () => (await runOf(id)).nodes[0].partitions.running > 0);
    const downMs = await k8s.restartApiServer();
    expect(downMs).toBeGreaterThan(0);
    const run = await finished(id, 180_000);
    expect(run.status).toBe("succeeded");
    expect((await jobsOfRun(id)).length).toBe(1);
  });
});
