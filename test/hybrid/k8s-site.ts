/**
 * A Kubernetes cluster of the hybrid tests as its users would set it up, shared by the test files
 * that run DAGs across such clusters on the host's loopback: a cluster of the KWOK harness (its own
 * etcd, API server, controllers, fake nodes and credentials; KWOK stands in for kubelets running
 * containers), registered with the API, the agent's chart installed as printed with the values
 * profile of its kind (agent-chart.ts), and the agent holding only a token of the chart's
 * ServiceAccount and its own NATS credentials — as a host process, there being no kubelet.
 */
import { execFileSync } from "node:child_process";
import { cpSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import { type K8sCluster, startK8sCluster } from "../../scripts/k8s/harness";
import { DEFAULT_NODES, GPU_RESOURCE } from "../../scripts/k8s/nodes";
import { type AgentOptions, type AgentProcess, startAgent } from "../../scripts/local/agent";
import { ROOT } from "../../scripts/local/control-plane";
import type { Embedded } from "../../scripts/local/embedded";
import type { Answer } from "../support/e2e-api";
import { AGENT_NAMESPACE, installAgentChart } from "./agent-chart";

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
  const chart = await installAgentChart({ k8s, name: o.name, helmInstall: cluster.body.bootstrap.helmInstall, profile: o.kind, mlflowUrl: o.env.mlflow.url, dir: home });
  const agentOptions: AgentOptions = {
    controlPlaneUrl: o.env.control.url,
    mlflowUrl: o.env.mlflow.url,
    stateDir: join(home, "agent"),
    projectsRoot: o.dir,
    extraArgs: [...chart.agentArgs, "--pull-expires-seconds", "5", ...(o.extraAgentArgs ?? [])],
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
      const out = await k8s.kubectl(["-n", AGENT_NAMESPACE, "get", "jobs", "-l", `parallels.io/run=${runId}`, "-o", "json"]);
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
