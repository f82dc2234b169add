/**
 * @module
 * Builds images in the cluster: the context goes to the node's MLflow run as a tarball
 * (`parallels/build/<image>.tar.gz`), a Job ({@link buildJob}) builds and pushes, and the agent
 * follows it — its pod's log streamed into the build's log as it grows, the Job's end read from
 * its conditions. One Job per image (its name comes from the image), so a restarted agent, or a
 * second one, finds the build under way and waits for it; a finished Job of the same image (an
 * earlier failure) is deleted and the build made again.
 */
import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { splitImageRef } from "../../../../proto/images";
import type { MlflowClient } from "../../../../proto/mlflow";
import type { Toleration } from "../../../../proto/dag";
import { BuildFailure, type Builder, type BuildRequest, buildFailureMessage } from "../../images/service";
import { tarGz } from "../../images/tar";
import { isAlreadyExists, isNotFound, type KubeApi } from "./api";
import { buildJob, buildkitdToml, type ClusterBuilder, CONTEXT_FILES, WORKSPACE } from "./build-job";
import { buildJobName, buildLabels } from "./names";
import type { WorkNetwork } from "./work-network";

export interface KubernetesBuilderOptions {
  api: KubeApi;
  namespace: string;
  clusterId: string;
  builder: ClusterBuilder;
  builderImage: string;
  agentImage: string;
  mlflow: MlflowClient;
  /** MLflow as the build pods reach it. */
  stepsTrackingUri: string;
  stepsMlflowSecret?: string;
  registrySecret?: string;
  /** Registries reached over plain HTTP. */
  plainHttpRegistries: readonly string[];
  /** The registry repository of the layer cache (`<registry>/<prefix>/cache`). */
  cacheRepository?: string;
  /** PEM file of the extra CA bundle, given to the builds' RUN steps. */
  caBundle?: string;
  serviceAccountName?: string;
  imagePullSecrets: readonly string[];
  nodeSelector: Record<string, string>;
  tolerations: readonly Toleration[];
  timeoutSeconds: number;
  /** Ended build Jobs (and their logs) are kept this long. */
  ttlSecondsAfterFinished: number;
  /** How often the Job and its log are read while it builds (default 2 s). */
  pollMs?: number;
  podAnnotations?: () => Record<string, string>;
  /** The site's proxy and CA bundle (work-network.ts). */
  network?: WorkNetwork;
}

interface JobStatus {
  metadata?: { uid?: string; deletionTimestamp?: string };
  status?: { conditions?: { type: string; status: string; reason?: string; message?: string }[]; active?: number };
}
interface PodList {
  items: {
    metadata: { name: string; creationTimestamp?: string };
    status?: {
      phase?: string;
      containerStatuses?: { name: string; state?: { terminated?: { exitCode?: number; reason?: string; message?: string }; waiting?: { reason?: string; message?: string } } }[];
      initContainerStatuses?: { name: string; state?: { terminated?: { exitCode?: number; reason?: string; message?: string }; waiting?: { reason?: string; message?: string } } }[];
    };
  }[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class KubernetesBuilder implements Builder {
  readonly description: string;

  constructor(private readonly o: KubernetesBuilderOptions) {
    this.description = `${o.builder} ${o.builderImage}`;
  }

  private get jobs(): string {
    return `/apis/batch/v1/namespaces/${encodeURIComponent(this.o.namespace)}/jobs`;
  }

  async build(req: BuildRequest): Promise<void> {
    if (!req.mlflowRunId) throw new Error("a build in the cluster needs the node's MLflow run (its context is stored there)");
    const name = buildJobName(req.ref);
    const extra = [
      ...(this.o.caBundle ? [{ path: CONTEXT_FILES.ca, data: readFileSync(this.o.caBundle) }] : []),
      ...(this.o.plainHttpRegistries.length ? [{ path: CONTEXT_FILES.buildkitd, data: new TextEncoder().encode(buildkitdToml(this.o.plainHttpRegistries)) }] : []),
    ];
    const tarball = tarGz([...req.context, ...extra]);
    const path = `parallels/build/${createHash("sha256").update(req.ref).digest("hex").slice(0, 16)}.tar.gz`;
    await this.o.mlflow.uploadArtifact(req.mlflowRunId, path, tarball, "application/gzip");
    req.log(`parallels: build context (${tarball.length} bytes) stored as ${path} of MLflow run ${req.mlflowRunId}\n`);
    const job = buildJob({
      name,
      namespace: this.o.namespace,
      labels: buildLabels(this.o.clusterId, req.ref),
      annotations: { "parallels.io/image": req.ref },
      builder: this.o.builder,
      builderImage: this.o.builderImage,
      agentImage: this.o.agentImage,
      destination: req.ref,
      ...(this.o.cacheRepository ? { cacheRepository: this.o.cacheRepository } : {}),
      context: { trackingUri: this.o.stepsTrackingUri, runId: req.mlflowRunId, path, dir: WORKSPACE },
      plainHttpRegistries: this.o.plainHttpRegistries,
      withCa: !!this.o.caBundle,
      ...(this.o.registrySecret ? { registrySecret: this.o.registrySecret } : {}),
      ...(this.o.stepsMlflowSecret ? { stepsMlflowSecret: this.o.stepsMlflowSecret } : {}),
      ...(this.o.serviceAccountName ? { serviceAccountName: this.o.serviceAccountName } : {}),
      imagePullSecrets: this.o.imagePullSecrets,
      nodeSelector: this.o.nodeSelector,
      tolerations: this.o.tolerations,
      timeoutSeconds: this.o.timeoutSeconds,
      ttlSecondsAfterFinished: this.o.ttlSecondsAfterFinished,
      podAnnotations: this.o.podAnnotations?.() ?? {},
      ...(this.o.network ? { network: this.o.network } : {}),
    });
    await this.create(name, job, req);
    await this.follow(name, req);
  }

  /** Creates the Job, or joins the one under way; a finished one of the same image (an earlier failure) makes way. */
  private async create(name: string, job: unknown, req: BuildRequest): Promise<void> {
    for (let tries = 0; tries < 30; tries++) {
      try {
        await this.o.api.request("POST", this.jobs, { body: job });
        req.log(`parallels: build Job ${this.o.namespace}/${name} created (${this.o.builder})\n`);
        return;
      } catch (e) {
        if (!isAlreadyExists(e)) throw e;
      }
      const existing = await this.o.api.request<JobStatus>("GET", `${this.jobs}/${name}`).catch((e: unknown) => (isNotFound(e) ? null : Promise.reject(e)));
      if (existing && !existing.metadata?.deletionTimestamp && !finished(existing)) {
        req.log(`parallels: joining the build Job ${this.o.namespace}/${name} under way\n`);
        return;
      }
      if (existing && !existing.metadata?.deletionTimestamp) {
        req.log(`parallels: an earlier build Job ${name} ended (${finished(existing)}); building again\n`);
        await this.o.api.request("DELETE", `${this.jobs}/${name}`, { query: { propagationPolicy: "Background" } }).catch((e: unknown) => (isNotFound(e) ? undefined : Promise.reject(e)));
      }
      await sleep(1000);
    }
    throw new Error(`the build Job ${name} could not be made (an earlier one of the same image is still being deleted)`);
  }

  /** Follows the Job to its end, streaming its pod's log. */
  private async follow(name: string, req: BuildRequest): Promise<void> {
    let shown = "";
    let pod: string | undefined;
    const pollMs = this.o.pollMs ?? 2000;
    const readLog = async () => {
      const pods = await this.o.api.request<PodList>("GET", `/api/v1/namespaces/${encodeURIComponent(this.o.namespace)}/pods`, { query: { labelSelector: `batch.kubernetes.io/job-name=${name}` } });
      const latest = pods.items.sort((a, b) => (a.metadata.creationTimestamp ?? "").localeCompare(b.metadata.creationTimestamp ?? "")).at(-1);
      if (!latest) return undefined;
      pod = latest.metadata.name;
      const text = await this.o.api.text(`/api/v1/namespaces/${encodeURIComponent(this.o.namespace)}/pods/${pod}/log`, { query: { container: "build" } }).catch(() => "");
      if (text.startsWith(shown)) {
        if (text.length > shown.length) req.log(text.slice(shown.length));
      } else req.log(text); // a new pod, or a log cut at its start
      shown = text;
      return latest;
    };
    for (;;) {
      const job = await this.o.api.request<JobStatus>("GET", `${this.jobs}/${name}`).catch((e: unknown) => {
        if (isNotFound(e)) throw new BuildFailure(`the build Job ${name} was deleted before it ended`, shown);
        throw e;
      });
      const latest = await readLog().catch(() => undefined);
      const end = finished(job);
      if (end === "Complete") return;
      if (end) {
        const terminated = [...(latest?.status?.initContainerStatuses ?? []), ...(latest?.status?.containerStatuses ?? [])].find((c) => (c.state?.terminated?.exitCode ?? 0) !== 0);
        const waiting = [...(latest?.status?.initContainerStatuses ?? []), ...(latest?.status?.containerStatuses ?? [])].find((c) => c.state?.waiting?.reason);
        const condition = job.status?.conditions?.find((c) => c.type === "Failed" && c.status === "True");
        const cause = terminated
          ? `its container ${terminated.name} exited with ${terminated.state!.terminated!.exitCode}${terminated.state!.terminated!.reason ? ` (${terminated.state!.terminated!.reason})` : ""}`
          : waiting
            ? `its container ${waiting.name} never ran: ${waiting.state!.waiting!.reason}${waiting.state!.waiting!.message ? ` — ${waiting.state!.waiting!.message}` : ""}`
            : `the Job failed: ${condition?.reason ?? "Failed"}${condition?.message ? ` — ${condition.message}` : ""}`;
        throw new BuildFailure(buildFailureMessage(req.ref, shown, `the build Job ${name} failed: ${cause}`), shown);
      }
      await sleep(pollMs);
    }
  }
}

/** "Complete", "Failed", or null while the Job runs. */
function finished(job: JobStatus): "Complete" | "Failed" | null {
  for (const c of job.status?.conditions ?? []) if (c.status === "True" && (c.type === "Complete" || c.type === "Failed")) return c.type;
  return null;
}

/** The cache repository of built layers, beside the images: `<registry>/<prefix>/cache`. */
export function cacheRepositoryOf(registry: string, prefix: string): string {
  return `${registry}/${prefix}/cache`;
}

/** The registry host of a reference (for plain-HTTP decisions). */
export const registryOf = (ref: string) => splitImageRef(ref).registry;
