/**
 * @module
 * The Job that builds one image in the cluster, as a pure function of what the agent decided.
 * Its pod: an init container `context` (the agent's image, `parallels-agent pod build-context`)
 * fetches the build context — a tarball the agent stored as an artifact of the node's MLflow run
 * — into an emptyDir; the container `build` builds the generated Dockerfile there and pushes the
 * image with the registry credentials of a Secret the chart names:
 *
 * - **BuildKit** (default): `moby/buildkit:<v>-rootless`, daemonless (`buildctl-daemonless.sh`), as
 *   user 1000 with `--oci-worker-no-process-sandbox`. Rootless BuildKit needs seccomp and AppArmor
 *   unconfined (it makes user namespaces and mounts): Pod Security `privileged`.
 * - **Kaniko** (the maintained fork, `ghcr.io/osscontainertools/kaniko`): no user namespaces, no
 *   unconfined profiles — it runs as root in its container with the runtime's default
 *   capabilities and seccomp profile, which Pod Security `baseline` admits. For clusters whose
 *   policy forbids what BuildKit needs.
 *
 * Either way the extra CA bundle (a TLS-inspecting proxy before the package index) reaches the
 * RUN steps as the build secret `parallels-ca` (from `.parallels/ca.pem` of the context, never
 * copied into a layer), layers are cached in the registry (`<prefix>/cache`), and `backoffLimit`
 * is 0: a failed build fails the node with its reason; the node's retry builds again, from the
 * cached layers.
 *
 * Behind a proxy both containers get the proxy variables, and the site's CA bundle is mounted in
 * both (work-network.ts): `context` trusts it with `NODE_EXTRA_CA_CERTS`, the builder (Go) with
 * `SSL_CERT_DIR` = its image's certificate folder plus the bundle's, for base image pulls, the
 * cache and the push.
 */
import type { V1Container, V1Job, V1PodSpec, V1Toleration, V1Volume, V1VolumeMount } from "@kubernetes/client-node";
import type { Toleration } from "../../../../proto/dag";
import { CA_SECRET_ID } from "../../../../proto/images";
import { caEnv, caMounts, caVolumes, proxyEnv, type WorkNetwork } from "./work-network";

export type ClusterBuilder = "buildkit" | "kaniko";

export const DEFAULT_BUILDER_IMAGES: Readonly<Record<ClusterBuilder, string>> = Object.freeze({
  buildkit: "moby/buildkit:v0.34.2-rootless",
  kaniko: "ghcr.io/osscontainertools/kaniko:v1.27.6",
});

/** Where the context is in the build pod, and the agent's own files in it. */
export const WORKSPACE = "/workspace";
export const CONTEXT_FILES = Object.freeze({ ca: ".parallels/ca.pem", buildkitd: ".parallels/buildkitd.toml" } as const);
/** The env var carrying the context's location to `parallels-agent pod build-context`. */
export const BUILD_CONTEXT_ENV = "PARALLELS_BUILD_CONTEXT";

export interface BuildContextLocation {
  trackingUri: string;
  /** The MLflow run holding the tarball, and its artifact path. */
  runId: string;
  path: string;
  /** Where to unpack it. */
  dir: string;
}

export interface BuildJobInput {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  annotations?: Record<string, string>;
  builder: ClusterBuilder;
  builderImage: string;
  agentImage: string;
  /** The image to build and push. */
  destination: string;
  /** Registry repository of the layer cache (none: no cache). */
  cacheRepository?: string;
  context: BuildContextLocation;
  /** Registries (`host:port`) reached over plain HTTP. */
  plainHttpRegistries: readonly string[];
  /** The context holds the extra CA bundle at {@link CONTEXT_FILES}.ca. */
  withCa: boolean;
  /** A `kubernetes.io/dockerconfigjson` Secret: the build's registry credentials (push, and pulls of its bases). */
  registrySecret?: string;
  /** The work pods' MLflow credentials (the context is an MLflow artifact). */
  stepsMlflowSecret?: string;
  serviceAccountName?: string;
  imagePullSecrets: readonly string[];
  nodeSelector: Record<string, string>;
  tolerations: readonly Toleration[];
  timeoutSeconds: number;
  ttlSecondsAfterFinished: number;
  /** Extra pod annotations (the test harness's KWOK knobs). */
  podAnnotations?: Record<string, string>;
  /** The site's proxy and CA bundle (work-network.ts). */
  network?: WorkNetwork;
}

const AGENT_UID = 10001;
const BUILDKIT_UID = 1000;
/** Where each builder image keeps its CA certificates (Alpine's folder; Kaniko's own, its image's SSL_CERT_DIR). */
export const BUILDER_CERT_DIRS: Readonly<Record<ClusterBuilder, string>> = Object.freeze({ buildkit: "/etc/ssl/certs", kaniko: "/kaniko/ssl/certs" });

export function buildJob(i: BuildJobInput): V1Job {
  const insecure = (ref: string) => i.plainHttpRegistries.some((r) => ref.startsWith(`${r}/`));
  const workspace: V1VolumeMount = { name: "workspace", mountPath: WORKSPACE };
  const net = i.network ?? {};
  const volumes: V1Volume[] = [{ name: "workspace", emptyDir: {} }, ...caVolumes(net.ca)];
  const builderNet = [...proxyEnv(net.proxy), ...caEnv(net.ca, { goCertDir: BUILDER_CERT_DIRS[i.builder] })];
  const dockerConfig = (mountPath: string): V1VolumeMount[] => (i.registrySecret ? [{ name: "registry-auth", mountPath, readOnly: true }] : []);
  if (i.registrySecret) volumes.push({ name: "registry-auth", secret: { secretName: i.registrySecret, items: [{ key: ".dockerconfigjson", path: "config.json" }] } });
  const ca = i.withCa ? `${WORKSPACE}/${CONTEXT_FILES.ca}` : undefined;

  const context: V1Container = {
    name: "context",
    image: i.agentImage,
    args: ["pod", "build-context"],
    env: [{ name: BUILD_CONTEXT_ENV, value: JSON.stringify(i.context) }, ...proxyEnv(net.proxy), ...caEnv(net.ca, { node: true })],
    ...(i.stepsMlflowSecret ? { envFrom: [{ secretRef: { name: i.stepsMlflowSecret, optional: false } }] } : {}),
    volumeMounts: [workspace, ...caMounts(net.ca)],
    securityContext: {
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
      runAsNonRoot: true,
      runAsUser: AGENT_UID,
      runAsGroup: AGENT_UID,
      readOnlyRootFilesystem: true,
      seccompProfile: { type: "RuntimeDefault" },
    },
    resources: { requests: { cpu: "50m", memory: "64Mi" }, limits: { memory: "256Mi" } },
  };

  let build: V1Container;
  if (i.builder === "buildkit") {
    const registryFlags = (ref: string) => (insecure(ref) ? ",registry.insecure=true" : "");
    build = {
      name: "build",
      image: i.builderImage,
      command: ["buildctl-daemonless.sh"],
      args: [
        "build",
        "--progress=plain",
        "--frontend=dockerfile.v0",
        "--local",
        `context=${WORKSPACE}`,
        "--local",
        `dockerfile=${WORKSPACE}`,
        "--output",
        `type=image,name=${i.destination},push=true${registryFlags(i.destination)}`,
        ...(ca ? ["--secret", `id=${CA_SECRET_ID},src=${ca}`] : []),
        ...(i.cacheRepository
          ? [
              "--export-cache",
              `type=registry,ref=${i.cacheRepository}:buildkit,mode=max,image-manifest=true,oci-mediatypes=true${registryFlags(i.cacheRepository)}`,
              "--import-cache",
              `type=registry,ref=${i.cacheRepository}:buildkit${registryFlags(i.cacheRepository)}`,
            ]
          : []),
      ],
      env: [
        // Its own daemon in the pod, without a process sandbox (the pod is the sandbox); HTTP registries from the context's toml.
        { name: "BUILDKITD_FLAGS", value: `--oci-worker-no-process-sandbox${i.plainHttpRegistries.length ? ` --config ${WORKSPACE}/${CONTEXT_FILES.buildkitd}` : ""}` },
        { name: "DOCKER_CONFIG", value: "/home/user/.docker" },
        ...builderNet,
      ],
      volumeMounts: [{ ...workspace, readOnly: true }, { name: "buildkitd", mountPath: "/home/user/.local/share/buildkit" }, ...dockerConfig("/home/user/.docker"), ...caMounts(net.ca)],
      // Rootless BuildKit makes a user namespace (newuidmap: privilege escalation) and mounts in it.
      securityContext: {
        runAsNonRoot: true,
        runAsUser: BUILDKIT_UID,
        runAsGroup: BUILDKIT_UID,
        seccompProfile: { type: "Unconfined" },
        appArmorProfile: { type: "Unconfined" },
      },
      resources: { requests: { cpu: "500m", memory: "1Gi" }, limits: { memory: "8Gi" } },
    };
    volumes.push({ name: "buildkitd", emptyDir: {} });
  } else {
    build = {
      name: "build",
      image: i.builderImage,
      args: [
        `--dockerfile=${WORKSPACE}/Dockerfile`,
        `--context=dir://${WORKSPACE}`,
        `--destination=${i.destination}`,
        ...(ca ? [`--secret=id=${CA_SECRET_ID},src=${ca}`] : []),
        ...(i.cacheRepository ? ["--cache=true", `--cache-repo=${i.cacheRepository}`] : []),
        ...i.plainHttpRegistries.map((r) => `--insecure-registry=${r}`),
      ],
      env: [{ name: "DOCKER_CONFIG", value: "/kaniko/.docker" }, ...builderNet],
      volumeMounts: [workspace, ...dockerConfig("/kaniko/.docker"), ...caMounts(net.ca)],
      // Kaniko unpacks the base image over its own root and runs the RUN steps there: root in its
      // container, the runtime's default capabilities, no privilege escalation, RuntimeDefault seccomp.
      securityContext: { runAsUser: 0, runAsNonRoot: false, allowPrivilegeEscalation: false, seccompProfile: { type: "RuntimeDefault" } },
      resources: { requests: { cpu: "500m", memory: "1Gi" }, limits: { memory: "8Gi" } },
    };
  }

  const pod: V1PodSpec = {
    restartPolicy: "Never",
    ...(i.serviceAccountName ? { serviceAccountName: i.serviceAccountName } : {}),
    automountServiceAccountToken: false,
    initContainers: [context],
    containers: [build],
    volumes,
    ...(Object.keys(i.nodeSelector).length ? { nodeSelector: i.nodeSelector } : {}),
    ...(i.tolerations.length ? { tolerations: i.tolerations.map(toleration) } : {}),
    ...(i.imagePullSecrets.length ? { imagePullSecrets: i.imagePullSecrets.map((name) => ({ name })) } : {}),
  };
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name: i.name, namespace: i.namespace, labels: i.labels, ...(i.annotations ? { annotations: i.annotations } : {}) },
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: i.timeoutSeconds,
      ttlSecondsAfterFinished: i.ttlSecondsAfterFinished,
      template: {
        metadata: { labels: i.labels, ...(i.podAnnotations && Object.keys(i.podAnnotations).length ? { annotations: i.podAnnotations } : {}) },
        spec: pod,
      },
    },
  };
}

/** buildkitd's configuration for registries reached over HTTP (pulls of bases, cache, push). */
export function buildkitdToml(plainHttpRegistries: readonly string[]): string {
  return plainHttpRegistries.map((r) => `[registry."${r}"]\n  http = true\n  insecure = true\n`).join("\n");
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
