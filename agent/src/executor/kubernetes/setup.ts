/**
 * The Kubernetes executor from the agent's configuration: how it reaches the API server (the
 * pod's ServiceAccount in a cluster, a kubeconfig outside), where it keeps its credentials (the
 * chart's Secret), and the executor itself.
 */
import { join } from "node:path";
import type { AgentConfig } from "../../config";
import type { Logger } from "../../log";
import { mlflowClient } from "../../mlflow";
import type { CredentialStore } from "../../register";
import { inClusterConnection, inClusterNamespace, KubeApi, kubeconfigConnection } from "./api";
import { SecretCredentialStore } from "./credentials";
import { createKubernetesExecutor, type KubernetesExecutor } from "./index";

export interface KubeAccess {
  api: KubeApi;
  /** The namespace of the work Jobs. */
  namespace: string;
  /** The agent pod's own namespace (or the kubeconfig's): where the chart keeps its Secrets. */
  home: string;
}

/** `onRequest`: told each request's verb (the agent's metrics count them). */
export function kubeAccess(config: AgentConfig, onRequest?: (verb: string) => void): KubeAccess {
  const connection = config.kubeconfig ? kubeconfigConnection(config.kubeconfig) : inClusterConnection();
  const home = (config.kubeconfig ? (connection as { namespace?: string }).namespace : inClusterNamespace()) ?? "default";
  return { api: new KubeApi(connection, onRequest ? { onRequest: (verb) => onRequest(verb) } : {}), namespace: config.namespace ?? home, home };
}

/** `PARALLELS_CREDENTIALS_SECRET` (`[namespace/]name`; default namespace: the agent's own). */
export function secretCredentialStore(access: KubeAccess, ref: string): CredentialStore {
  const [ns, name] = ref.includes("/") ? (ref.split("/", 2) as [string, string]) : [access.home, ref];
  return new SecretCredentialStore(access.api, ns, name);
}

/** `onMlflowRequest`: told each MLflow request's endpoint (the agent's metrics count them). */
export function kubernetesExecutorFor(config: AgentConfig, access: KubeAccess, clusterId: string, logger: Logger, onMlflowRequest?: (endpoint: string) => void): Promise<KubernetesExecutor> {
  const trackingUri = config.mlflowTrackingUri!; // required by loadConfig
  return createKubernetesExecutor({
    api: access.api,
    namespace: access.namespace,
    clusterId,
    agentImage: config.agentImage!, // required for "kubernetes" by loadConfig
    mlflow: mlflowClient(trackingUri, process.env, onMlflowRequest),
    stepsTrackingUri: config.stepsMlflowTrackingUri ?? trackingUri,
    stateDir: join(config.stateDir, "executor"),
    logger,
    ...(config.projectsRoot ? { projectsRoot: config.projectsRoot } : {}),
    ...(config.workServiceAccount ? { workServiceAccount: config.workServiceAccount } : {}),
    workNodeSelector: config.workNodeSelector,
    workTolerations: config.workTolerations,
    gpuTolerations: config.gpuTolerations,
    imagePullSecrets: config.workImagePullSecrets,
    ...(config.stepsMlflowSecret ? { stepsMlflowSecret: config.stepsMlflowSecret } : {}),
    jobTtlSeconds: config.jobTtlSeconds,
    maxPartitionRuns: config.maxPartitionRuns,
    logsEverySeconds: 30,
  });
}
