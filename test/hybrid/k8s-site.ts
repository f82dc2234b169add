/**
 * A Kubernetes cluster of the hybrid tests as its users would set it up, shared by the test files
 * that run DAGs across such clusters: a cluster of the KWOK harness (its own etcd, API server,
 * controllers, fake nodes and credentials; KWOK stands in for kubelets running containers),
 * registered with the API, the chart installed with the `helm` line `POST /v1/clusters` prints
 * plus the values profile of its kind (charts/parallels-agent/values-<kind>.yaml), and the agent
 * holding only a token of the chart's ServiceAccount (so the chart's Role is all it can do) and
 * its own NATS credentials — as a host process, there being no kubelet.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import { type K8sCluster, startK8sCluster } from "../../scripts/k8s/harness";
import { DEFAULT_NODES, GPU_RESOURCE } from "../../scripts/k8s/nodes";
import { type AgentOptions, type AgentProcess, startAgent } from "../../scripts/local/agent";
import { ROOT } from "../../scripts/local/control-plane";
import type { Embedded } from "../../scripts/local/embedded";
import type { Answer } from "../support/e2e-api";

/** The namespace the chart is installed in and the agent's Jobs run in. */
export const SITE_NAMESPACE = "parallels";

export interface K8sSite {
  name: string;
  k8s: K8sCluster;
  agent: AgentProcess;
  /**
   * Starts the site's agent again, as the same cluster (its state dir; its credentials from the
   * chart's Secret, so no bootstrap token) — after `agent.stop()`, e.g. once its cluster is back.
   */
  restartAgent(): Promise<AgentProcess>;
  /** Jobs the agent made in this cluster for a run (its label `parallels.io/run`). */
  jobsOfRun(runId: string): Promise<any[]>;
}

export interface K8sSiteOptions {
  /** The cluster's name at the control plane and in the harness. */
  name: string;
  /** Its kind at the control plane; also picks the chart's values profile. */
  kind: "eks" | "ezmeral";
  labels: Record<string, string>;
  /** With the harness's tainted GPU pool (else its CPU nodes only). */
  gpu: boolean;
  /** The site's state goes in `<dir>/<name>`. */
  dir: string;
  binDir: string;
  env: Embedded;
  api: (method: string, path: string, body?: unknown) => Promise<Answer>;
  /** Agent flags beside the Kubernetes executor's, e.g. `--heartbeat-seconds 3`. */
  extraAgentArgs?: string[];
}

export async function startK8sSite(o: K8sSiteOptions): Promise<K8sSite> {
  const home = join(o.dir, o.name);
  const nodes = o.gpu ? DEFAULT_NODES : DEFAULT_NODES.filter((n) => !n.allocatable[GPU_RESOURCE]);
  const k8s = await startK8sCluster({ name: o.name, runDir: join(home, "cluster"), binDir: o.binDir, nodes });
  const cluster = await o.api("POST", "/v1/clusters", { name: o.name, kind: o.kind, labels: o.labels });
  expect(cluster.status, JSON.stringify(cluster.body)).toBe(201);
  const line = (cluster.body.bootstrap.helmInstall as string).replace(" --set-file ", ` -f charts/parallels-agent/values-${o.kind}.yaml --set-file `);
  expect(line).toContain(`values-${o.kind}.yaml`);
  const helm = spawnSync("sh", [], {
    cwd: ROOT,
    input: line,
    encoding: "utf8",
    env: {
      ...process.env,
      PATH: `${k8s.binDir}:${process.env.PATH}`,
      KUBECONFIG: k8s.kubeconfigPath,
      MLFLOW_TRACKING_URI: o.env.mlflow.url,
      HELM_CACHE_HOME: join(home, "helm/cache"),
      HELM_CONFIG_HOME: join(home, "helm/config"),
      HELM_DATA_HOME: join(home, "helm/data"),
    },
  });
  expect(helm.status, `${helm.stdout}\n${helm.stderr}`).toBe(0);
  expect(helm.stdout).toContain("STATUS: deployed");

  const token = (await k8s.kubectl(["-n", SITE_NAMESPACE, "create", "token", "parallels-agent", "--duration=1h"])).trim();
  const kubeconfig = join(home, "agent.kubeconfig");
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: o.name, cluster: { server: k8s.apiUrl, "certificate-authority": k8s.caFile } }],
      users: [{ name: "agent", user: { token } }],
      contexts: [{ name: "agent", context: { cluster: o.name, user: "agent", namespace: SITE_NAMESPACE } }],
      "current-context": "agent",
    }),
    { mode: 0o600 },
  );
  const agentOptions: AgentOptions = {
    controlPlaneUrl: o.env.control.url,
    mlflowUrl: o.env.mlflow.url,
    stateDir: join(home, "agent"),
    projectsRoot: o.dir,
    extraArgs: [
      "--executor",
      "kubernetes",
      "--kubeconfig",
      kubeconfig,
      "--namespace",
      SITE_NAMESPACE,
      "--agent-image",
      "registry.example.test/parallels-agent:test",
      "--credentials-secret",
      `${SITE_NAMESPACE}/parallels-agent-credentials`,
      "--cluster-name",
      o.name,
      "--pull-expires-seconds",
      "5",
      ...(o.extraAgentArgs ?? []),
    ],
  };
  const site: K8sSite = {
    name: o.name,
    k8s,
    agent: await startAgent({ ...agentOptions, bootstrapToken: cluster.body.bootstrap.token }),
    async restartAgent() {
      site.agent = await startAgent(agentOptions);
      return site.agent;
    },
    async jobsOfRun(runId) {
      const out = await k8s.kubectl(["-n", SITE_NAMESPACE, "get", "jobs", "-l", `parallels.io/run=${runId}`, "-o", "json"]);
      return (JSON.parse(out) as { items: any[] }).items;
    },
  };
  return site;
}

/**
 * The step fixture (test/fixtures/projects/step) as a git repository in `dir`, committed once: a
 * DAG node's `project` as the agents' pods would fetch it (`file://`, at that commit).
 */
export function stepProjectInGit(dir: string): { uri: string; version: string } {
  const repo = join(dir, "step.git");
  cpSync(join(ROOT, "test/fixtures/projects/step"), repo, { recursive: true });
  const git = (...args: string[]) => execFileSync("git", ["-c", "user.email=t@example.test", "-c", "user.name=t", ...args], { cwd: repo, encoding: "utf8" }).trim();
  git("init", "-q");
  git("add", ".");
  git("commit", "-q", "-m", "step");
  return { uri: `file://${repo}`, version: git("rev-parse", "HEAD") };
}
