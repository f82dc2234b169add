/**
 * Names and labels of the Kubernetes objects the agent makes. A Job's name is derived from
 * `(nodeRunId, attempt)` only, so a redelivered start finds the Job it made instead of making
 * another; it stays a valid DNS-1123 label short enough for its pods' hostnames
 * (`<job>-<index>`, ≤ 63 characters, with indexes up to 99,999).
 */
import { createHash } from "node:crypto";

export const LABELS = Object.freeze({
  managedBy: "app.kubernetes.io/managed-by",
  cluster: "parallels.io/cluster",
  run: "parallels.io/run",
  node: "parallels.io/node",
  attempt: "parallels.io/attempt",
  /** On image build Jobs and their pods (a hash of the image): the attempts' watches leave them out. */
  imageBuild: "parallels.io/image-build",
} as const);

export const ANNOTATIONS = Object.freeze({
  /** The full node run id (labels are too short for it). */
  nodeRunId: "parallels.io/node-run-id",
  runId: "parallels.io/run-id",
  /** JSON: what the agent needs to report on the Job after a restart ({@link JobRecord}). */
  record: "parallels.io/record",
} as const);

export const MANAGED_BY = "parallels-agent";

/** Longest Job name: its pods' hostnames `<job>-<index>` must fit 63 characters. */
export const MAX_JOB_NAME = 57;

export function jobName(nodeId: string, nodeRunId: string, attempt: number): string {
  const hash = createHash("sha256").update(`${nodeRunId}\u0000${attempt}`).digest("hex").slice(0, 12);
  // The node id helps people find the Job; it is a DNS label already (the DAG schema says so).
  const readable = nodeId.slice(0, MAX_JOB_NAME - hash.length - 4).replace(/-+$/, "");
  return `p-${readable}-${hash}`;
}

/** Labels of a Job and its pods: the agent lists and watches its own objects by them. */
export function workLabels(clusterId: string, ref: { runId: string; nodeId: string; attempt: number }): Record<string, string> {
  return {
    [LABELS.managedBy]: MANAGED_BY,
    [LABELS.cluster]: labelValue(clusterId),
    [LABELS.run]: labelValue(ref.runId),
    [LABELS.node]: labelValue(ref.nodeId),
    [LABELS.attempt]: String(ref.attempt),
  };
}

/** The label selector of the node attempts' Jobs and pods this cluster's agent made (not its image builds). */
export const ownSelector = (clusterId: string) => `${LABELS.managedBy}=${MANAGED_BY},${LABELS.cluster}=${labelValue(clusterId)},!${LABELS.imageBuild}`;

/** The build Job of an image: one name per image, so every agent (and a restarted one) finds the build under way. */
export function buildJobName(ref: string): string {
  const hash = createHash("sha256").update(ref).digest("hex").slice(0, 16);
  const repo = (ref.split("@")[0]!.split("/").pop() ?? "image").split(":")[0]!;
  const readable = repo
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .slice(0, MAX_JOB_NAME - hash.length - 8)
    .replace(/^-+|-+$/g, "");
  return `build-${readable ? `${readable}-` : ""}${hash}`;
}

export function buildLabels(clusterId: string, ref: string): Record<string, string> {
  return { [LABELS.managedBy]: MANAGED_BY, [LABELS.cluster]: labelValue(clusterId), [LABELS.imageBuild]: createHash("sha256").update(ref).digest("hex").slice(0, 16) };
}

/** A label value (≤ 63, alphanumeric at both ends): ids longer than that are cut and hashed. */
export function labelValue(v: string): string {
  if (/^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/.test(v)) return v;
  const hash = createHash("sha256").update(v).digest("hex").slice(0, 10);
  const head = v
    .replace(/[^-A-Za-z0-9_.]/g, "-")
    .slice(0, 50)
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, "");
  return head ? `${head}-${hash}` : hash;
}
