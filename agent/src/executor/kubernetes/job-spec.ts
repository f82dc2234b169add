/**
 * The Indexed Job of one node attempt, as a pure function of what the agent decided (no I/O):
 * `completions` = partitions, `parallelism` = the node's limit capped by what the cluster holds,
 * `backoffLimitPerIndex` = the node's retries (a failing index is retried alone; the others go
 * on), a pod failure policy (an exit code the step marked "do not retry" fails its index at once;
 * a pod disrupted by the cluster — eviction, preemption — does not count), `activeDeadlineSeconds`
 * = the node's timeout, `ttlSecondsAfterFinished` so ended Jobs go away, and labels carrying the
 * run, node and attempt.
 *
 * Pods: an init container `fetch` (the agent's image) puts the partition's inputs and the project
 * in the pod's work dir; a native sidecar `upload` (the agent's image, `restartPolicy: Always`)
 * uploads logs while the step runs and outputs when it ends; the container `step` runs the
 * entry point in the step's image through {@link STEP_WRAPPER}. Every container runs as non-root
 * with no privilege escalation and all capabilities dropped. Behind a proxy every container gets
 * the proxy variables and the site's CA bundle (work-network.ts); a node's own `env` wins.
 *
 * Every pod of a Job is written about six times (created, bound, Running, Succeeded, its finalizer
 * removed) and sent to every watcher each time: the API server's CPU per partition grows with
 * the pod's size (benchmarks: a one-container pod costs the harness about a third less CPU than
 * ours). So what is the same for every container is said once, at the pod level (user, group,
 * non-root, seccomp), and the attempt's JSON once, as a pod annotation the two programs read
 * through the downward API.
 */
import type { V1Container, V1EnvVar, V1Job, V1PodSpec, V1ResourceRequirements, V1Toleration } from "@kubernetes/client-node";
import type { Resources, Toleration } from "../../../../proto/dag";
import { POD_ATTEMPT_ENV, POD_DIR, POD_VOLUME, STEP_COMMAND_ENV, STEP_WRAPPER } from "./pod-layout";
import { caEnv, caMounts, caVolumes, proxyEnv, type WorkNetwork } from "./work-network";

export interface JobSpecInput {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  partitions: number;
  parallelism: number;
  /** Retries of each index (the node's `retries`). */
  retriesPerIndex: number;
  noRetryExitCodes: number[];
  timeoutSeconds?: number;
  ttlSecondsAfterFinished: number;
  /** The step's image (the project's docker_env image or the node's `image`). */
  stepImage: string;
  /** The entry point's command, rendered by the MLproject engine. */
  command: string;
  /** The step's environment: the node's `env` and MLflow's variables. */
  env: Record<string, string>;
  /** JSON of the attempt for the pod's own programs (`PodAttempt`). */
  podAttempt: string;
  /** The agent's own image (init container and sidecar). */
  agentImage: string;
  /** Secret holding the work pods' MLflow credentials (`MLFLOW_TRACKING_TOKEN` …), never the agent's. */
  stepsMlflowSecret?: string;
  serviceAccountName?: string;
  imagePullSecrets: string[];
  resources?: Resources;
  nodeSelector: Record<string, string>;
  tolerations: Toleration[];
  /** Extra pod annotations (the test harness's KWOK knobs). */
  podAnnotations?: Record<string, string>;
  /** The site's proxy and CA bundle, given to every container (work-network.ts). */
  network?: WorkNetwork;
}

/** The work dir volume, mounted at {@link POD_DIR} in every container. */
const mount = [{ name: POD_VOLUME, mountPath: POD_DIR }];
/** What the restricted Pod Security Standard wants of each container; the rest is at the pod level. */
const hardened = { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } };
/** The agent's image runs as its own non-root user (agent/Dockerfile); so does every program of ours, and the step. */
const AGENT_UID = 10001;
/** The pod annotation holding the attempt's JSON ({@link JobSpecInput.podAttempt}). */
export const POD_ATTEMPT_ANNOTATION = "parallels.io/pod-attempt";

export function resourcesOf(r: Resources | undefined): V1ResourceRequirements | undefined {
  if (!r || (r.cpu === undefined && r.memory === undefined && !r.gpu)) return undefined;
  const requests: Record<string, string> = {};
  const limits: Record<string, string> = {};
  if (r.cpu !== undefined) requests.cpu = String(r.cpu);
  if (r.memory !== undefined) requests.memory = limits.memory = r.memory;
  // Extended resources are requested through limits (requests default to them).
  if (r.gpu) limits["nvidia.com/gpu"] = String(r.gpu);
  return { ...(Object.keys(requests).length ? { requests } : {}), ...(Object.keys(limits).length ? { limits } : {}) };
}

const envList = (env: Record<string, string>): V1EnvVar[] => Object.entries(env).map(([name, value]) => ({ name, value }));
/** `ours` then `theirs`, a name of theirs replacing ours (a node's `env` may set its own proxy or CA file). */
const envOver = (ours: V1EnvVar[], theirs: V1EnvVar[]): V1EnvVar[] => [...ours.filter((e) => !theirs.some((t) => t.name === e.name)), ...theirs];

export function buildJob(i: JobSpecInput): V1Job {
  const secretEnv = i.stepsMlflowSecret ? [{ secretRef: { name: i.stepsMlflowSecret, optional: false } }] : undefined;
  const net = i.network ?? {};
  const mounts = [...mount, ...caMounts(net.ca)];
  const ours = (name: string, args: string[], extra: Partial<V1Container> = {}): V1Container => ({
    name,
    image: i.agentImage,
    args,
    env: [{ name: POD_ATTEMPT_ENV, valueFrom: { fieldRef: { fieldPath: `metadata.annotations['${POD_ATTEMPT_ANNOTATION}']` } } }, ...proxyEnv(net.proxy), ...caEnv(net.ca, { node: true })],
    ...(secretEnv ? { envFrom: secretEnv } : {}),
    volumeMounts: mounts,
    securityContext: { ...hardened, readOnlyRootFilesystem: true },
    resources: { requests: { cpu: "50m", memory: "64Mi" }, limits: { memory: "256Mi" } },
    ...extra,
  });
  const step: V1Container = {
    name: "step",
    image: i.stepImage,
    command: ["/bin/sh", "-c", STEP_WRAPPER],
    env: envOver([...proxyEnv(net.proxy), ...caEnv(net.ca, { step: POD_DIR })], envList({ ...i.env, [STEP_COMMAND_ENV]: i.command })),
    ...(secretEnv ? { envFrom: secretEnv } : {}),
    volumeMounts: mounts,
    securityContext: hardened,
    ...(resourcesOf(i.resources) ? { resources: resourcesOf(i.resources)! } : {}),
    terminationMessagePolicy: "File",
  };
  const pod: V1PodSpec = {
    restartPolicy: "Never",
    ...(i.serviceAccountName ? { serviceAccountName: i.serviceAccountName } : {}),
    automountServiceAccountToken: false,
    // The sidecar uploads what is left when the step ends: give it time before SIGKILL.
    terminationGracePeriodSeconds: 120,
    // The user's image may default to root: the step runs as the pod's non-root user all the same.
    securityContext: { runAsNonRoot: true, runAsUser: AGENT_UID, runAsGroup: AGENT_UID, fsGroup: AGENT_UID, seccompProfile: { type: "RuntimeDefault" } },
    initContainers: [ours("fetch", ["pod", "fetch"]), ours("upload", ["pod", "upload"], { restartPolicy: "Always" })],
    containers: [step],
    volumes: [{ name: POD_VOLUME, emptyDir: {} }, ...caVolumes(net.ca)],
    ...(Object.keys(i.nodeSelector).length ? { nodeSelector: i.nodeSelector } : {}),
    ...(i.tolerations.length ? { tolerations: i.tolerations.map(toleration) } : {}),
    ...(i.imagePullSecrets.length ? { imagePullSecrets: i.imagePullSecrets.map((name) => ({ name })) } : {}),
  };
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name: i.name, namespace: i.namespace, labels: i.labels, annotations: i.annotations },
    spec: {
      completionMode: "Indexed",
      completions: i.partitions,
      parallelism: Math.max(1, Math.min(i.parallelism, i.partitions)),
      backoffLimitPerIndex: i.retriesPerIndex,
      podFailurePolicy: {
        rules: [
          // The cluster took the pod away (drain, preemption): not the step's fault.
          { action: "Ignore", onPodConditions: [{ type: "DisruptionTarget", status: "True" }] },
          ...(i.noRetryExitCodes.length ? [{ action: "FailIndex", onExitCodes: { containerName: "step", operator: "In", values: i.noRetryExitCodes } }] : []),
        ],
      },
      ...(i.timeoutSeconds ? { activeDeadlineSeconds: i.timeoutSeconds } : {}),
      ttlSecondsAfterFinished: i.ttlSecondsAfterFinished,
      template: {
        metadata: { labels: i.labels, annotations: { ...i.podAnnotations, [POD_ATTEMPT_ANNOTATION]: i.podAttempt } },
        spec: pod,
      },
    },
  };
}

function toleration(t: Toleration): V1Toleration {
  return {
    ...(t.key !== undefined ? { key: t.key } : {}),
    operator: t.operator,
    ...(t.value !== undefined ? { value: t.value } : {}),
    ...(t.effect !== undefined ? { effect: t.effect } : {}),
    ...(t.tolerationSeconds !== undefined ? { tolerationSeconds: t.tolerationSeconds } : {}),
  };
}
