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
import type { MlflowClient } from "../../../../proto/mlflow";
import { imageSettingsFor, registryClientFor } from "../../images/setup";
import { RegistryImageStore } from "../../images/registry";
import { ImageService } from "../../images/service";
import type { StepImages } from "../shared/images";
import type { CacheLookupFn } from "../types";
import { inClusterConnection, inClusterNamespace, KubeApi, kubeconfigConnection } from "./api";
import { DEFAULT_BUILDER_IMAGES } from "./build-job";
import { cacheRepositoryOf, KubernetesBuilder } from "./builder";
import { SecretCredentialStore } from "./credentials";
import { createKubernetesExecutor, type KubernetesExecutor } from "./index";
import { type WorkNetwork, workNoProxy } from "./work-network";

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

/**
 * The proxy and CA bundle of the pods the agent makes: the proxy Secret when one is named, else
 * the agent's own proxy URLs (config.ts refused them if they hold credentials); NO_PROXY the
 * agent's plus the cluster's own names.
 */
export function workNetworkOf(config: AgentConfig): WorkNetwork {
  const noProxy = workNoProxy(config.proxy?.noProxy ?? "");
  const proxy = config.workProxySecret ? { secret: config.workProxySecret, noProxy } : config.proxy ? { httpsProxy: config.proxy.httpsProxy, httpProxy: config.proxy.httpProxy, noProxy } : undefined;
  return { ...(proxy ? { proxy } : {}), ...(config.workCaBundle ? { ca: config.workCaBundle } : {}) };
}

/**
 * Image builds in the cluster, when it has a registry (`--image-registry`): the registry check
 * with the chart's credentials, and a build Job per missing image (BuildKit, or Kaniko).
 */
export function clusterImagesFor(config: AgentConfig, access: KubeAccess, clusterId: string, mlflow: MlflowClient): StepImages | undefined {
  if (!config.imageRegistry) return undefined;
  const settings = imageSettingsFor(config);
  const host = config.imageRegistry.split("/")[0]!;
  const registry = config.imageRegistry.replace(/\/+$/, "");
  const mirrored = settings.bases.registry.replace(/\/+$/, "");
  const builderImage =
    config.builderImage ??
    (config.imageBuilder === "buildkit" || mirrored !== "docker.io" ? `${mirrored}/${DEFAULT_BUILDER_IMAGES[config.imageBuilder].replace(/^ghcr\.io\//, "")}` : DEFAULT_BUILDER_IMAGES.kaniko);
  const builder = new KubernetesBuilder({
    api: access.api,
    namespace: access.namespace,
    clusterId,
    builder: config.imageBuilder,
    builderImage,
    agentImage: config.agentImage!,
    mlflow,
    stepsTrackingUri: config.stepsMlflowTrackingUri ?? config.mlflowTrackingUri!,
    ...(config.stepsMlflowSecret ? { stepsMlflowSecret: config.stepsMlflowSecret } : {}),
    ...(config.imageRegistrySecret ? { registrySecret: config.imageRegistrySecret } : {}),
    plainHttpRegistries: config.imageRegistryPlainHttp ? [host] : [],
    cacheRepository: cacheRepositoryOf(registry, config.imageRepositoryPrefix),
    ...(config.extraCaBundle ? { caBundle: config.extraCaBundle } : {}),
    ...(config.workServiceAccount ? { serviceAccountName: config.workServiceAccount } : {}),
    imagePullSecrets: config.workImagePullSecrets,
    nodeSelector: config.workNodeSelector,
    tolerations: config.workTolerations,
    timeoutSeconds: config.buildTimeoutSeconds,
    ttlSecondsAfterFinished: Math.min(config.jobTtlSeconds, 86_400),
    network: workNetworkOf(config),
  });
  return { service: new ImageService(new RegistryImageStore(registryClientFor(config), host), builder), settings };
}

/** `onMlflowRequest`: told each MLflow request's endpoint (the agent's metrics count them). */
export function kubernetesExecutorFor(
  config: AgentConfig,
  access: KubeAccess,
  clusterId: string,
  logger: Logger,
  onMlflowRequest?: (endpoint: string) => void,
  cacheLookup?: CacheLookupFn,
): Promise<KubernetesExecutor> {
  const trackingUri = config.mlflowTrackingUri!; // required by loadConfig
  const mlflow = mlflowClient(trackingUri, process.env, onMlflowRequest);
  const images = clusterImagesFor(config, access, clusterId, mlflow);
  return createKubernetesExecutor({
    ...(images ? { images } : {}),
    api: access.api,
    namespace: access.namespace,
    clusterId,
    agentImage: config.agentImage!, // required for "kubernetes" by loadConfig
    mlflow,
    stepsTrackingUri: config.stepsMlflowTrackingUri ?? trackingUri,
    stateDir: join(config.stateDir, "executor"),
    logger,
    ...(config.projectsRoot ? { projectsRoot: config.projectsRoot } : {}),
    ...(config.workServiceAccount ? { workServiceAccount: config.workServiceAccount } : {}),
    workNodeSelector: config.workNodeSelector,
    workTolerations: config.workTolerations,
    gpuTolerations: config.gpuTolerations,
    // The steps' images come from the cluster's registry too: its Secret pulls them.
    imagePullSecrets: [...new Set([...config.workImagePullSecrets, ...(images && config.imageRegistrySecret ? [config.imageRegistrySecret] : [])])],
    ...(config.stepsMlflowSecret ? { stepsMlflowSecret: config.stepsMlflowSecret } : {}),
    jobTtlSeconds: config.jobTtlSeconds,
    maxPartitionRuns: config.maxPartitionRuns,
    logsEverySeconds: config.logsEverySeconds,
    network: workNetworkOf(config),
    ...(cacheLookup ? { cacheLookup } : {}),
  });
}
