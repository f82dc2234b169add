/**
 * The Kubernetes executor's settings and what its parts share.
 */
import type { MlflowClient } from "../../../../proto/mlflow";
import type { Toleration } from "../../../../proto/dag";
import type { WorkStart } from "../../../../proto/messages";
import type { Logger } from "../../log";
import type { KubeApi } from "./api";
import type { ObservedNode } from "./capacity";
import type { StepImages } from "../shared/images";
import type { CacheLookupFn } from "../types";
import type { WorkNetwork } from "./work-network";

export interface KubernetesExecutorOptions {
  api: KubeApi;
  /** Where the work Jobs go. */
  namespace: string;
  /** This cluster's id at the control plane (labels select the agent's own objects by it). */
  clusterId: string;
  /** The agent's own image: the work pods' `fetch` init container and `upload` sidecar. */
  agentImage: string;
  /** MLflow as the agent reaches it. */
  mlflow: MlflowClient;
  /** MLflow as the work pods reach it (default: the agent's tracking URI). */
  stepsTrackingUri: string;
  /** Git checkouts of projects (to read their MLproject and pin the commit). */
  stateDir: string;
  logger: Logger;
  /** `file://` git repositories are read only below this folder (tests); none: only remote repositories. */
  projectsRoot?: string;
  workServiceAccount?: string;
  workNodeSelector: Record<string, string>;
  workTolerations: Toleration[];
  /** Added to the pods of steps that request GPUs. */
  gpuTolerations: Toleration[];
  imagePullSecrets: string[];
  /** Secret with the work pods' MLflow credentials (never the agent's own). */
  stepsMlflowSecret?: string;
  /** Ended Jobs go away after this long (default a day). */
  jobTtlSeconds: number;
  /** Nested MLflow runs per partition up to this many partitions (default 100); beyond, partitions log under the node's run. */
  maxPartitionRuns: number;
  /** Seconds between the pods' log uploads (default 30). */
  logsEverySeconds: number;
  /** Extra annotations on a Job's pods (the test harness's KWOK knobs: how long a pod "runs", which indexes "fail"). */
  podAnnotations?: (work: WorkStart) => Record<string, string>;
  /**
   * Image builds: a step without an `image` runs in the image built from its project (its
   * environment, then the project at its commit), found in the cluster's registry or built there
   * by a Job (BuildKit or Kaniko). Without it, such a step needs its docker_env image.
   */
  images?: StepImages;
  /** The control plane's cache lookup (the core's): without it, caching nodes always run (cache.ts). */
  cacheLookup?: CacheLookupFn;
  /** The site's proxy and CA bundle, given to every pod the executor makes (work-network.ts). */
  network?: WorkNetwork;
  gitBin?: string;
  now?: () => number;
}

export interface KubernetesContext {
  o: KubernetesExecutorOptions;
  /** The cluster's nodes as last seen. */
  nodes(): Iterable<ObservedNode>;
}
