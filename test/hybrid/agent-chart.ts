/**
 * A harness cluster's agent installed as its users install it: the `helm` line `POST /v1/clusters`
 * printed, plus the site's values profile (charts/parallels-agent/values-<profile>.yaml), run from
 * the repository's root — inside the cluster's network namespace when the cluster runs there (its
 * command prefix), since its API server listens on that namespace's loopback only. There being no
 * kubelet, the agent runs as a process beside the cluster, holding only a token of the chart's
 * ServiceAccount (so the chart's Role is all it may do) and the Kubernetes executor's flags.
 */
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { K8sCluster } from "../../scripts/k8s/harness";
import { ROOT } from "../../scripts/local/control-plane";

/** The namespace the printed line installs into. */
export const AGENT_NAMESPACE = "parallels";

export interface AgentChartInstall {
  /** The cluster's agent flags: Kubernetes executor, the kubeconfig below, the chart's Secrets. */
  agentArgs: string[];
  /** A kubeconfig (0600) with a token of the chart's ServiceAccount, for an hour. */
  kubeconfig: string;
}

export async function installAgentChart(o: {
  k8s: K8sCluster;
  /** The cluster's name at the control plane. */
  name: string;
  /** `bootstrap.helmInstall` of `POST /v1/clusters`. */
  helmInstall: string;
  /** Values profile: `charts/parallels-agent/values-<profile>.yaml`. */
  profile: string;
  /** What the line takes from `MLFLOW_TRACKING_URI`. */
  mlflowUrl: string;
  /** Where helm's homes and the agent's kubeconfig go. */
  dir: string;
}): Promise<AgentChartInstall> {
  const values = `charts/parallels-agent/values-${o.profile}.yaml`;
  const line = o.helmInstall.replace(" --set-file ", ` -f ${values} --set-file `);
  if (!line.includes(values)) throw new Error(`the printed helm line has no --set-file to put the values profile before: ${o.helmInstall.slice(0, 120)}…`);
  const [cmd, ...pre] = [...o.k8s.commandPrefix, "sh"];
  // The line goes to sh on stdin: the bootstrap token it holds is never on a command line.
  const helm = spawnSync(cmd!, pre, {
    cwd: ROOT,
    input: line,
    encoding: "utf8",
    timeout: 120_000,
    env: {
      ...process.env,
      PATH: `${o.k8s.binDir}:${process.env.PATH}`,
      KUBECONFIG: o.k8s.kubeconfigPath,
      MLFLOW_TRACKING_URI: o.mlflowUrl,
      HELM_CACHE_HOME: join(o.dir, "helm/cache"),
      HELM_CONFIG_HOME: join(o.dir, "helm/config"),
      HELM_DATA_HOME: join(o.dir, "helm/data"),
    },
  });
  if (helm.status !== 0 || !helm.stdout.includes("STATUS: deployed")) throw new Error(`helm install of ${o.name}'s agent failed (${helm.status}):\n${helm.stdout}\n${helm.stderr}`);

  const token = (await o.k8s.kubectl(["-n", AGENT_NAMESPACE, "create", "token", "parallels-agent", "--duration=1h"])).trim();
  const kubeconfig = join(o.dir, "agent.kubeconfig");
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: o.name, cluster: { server: o.k8s.apiUrl, "certificate-authority": o.k8s.caFile } }],
      users: [{ name: "agent", user: { token } }],
      contexts: [{ name: "agent", context: { cluster: o.name, user: "agent", namespace: AGENT_NAMESPACE } }],
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
    AGENT_NAMESPACE,
    "--agent-image",
    "registry.example.test/parallels-agent:test",
    "--credentials-secret",
    `${AGENT_NAMESPACE}/parallels-agent-credentials`,
    "--cluster-name",
    o.name,
  ];
  return { agentArgs, kubeconfig };
}
