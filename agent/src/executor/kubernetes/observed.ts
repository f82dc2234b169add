/**
 * What the agent keeps of the Jobs and pods it watches: a few fields each, parsed with zod from
 * the API's answers (10,000 pods stay small), and how they read as an attempt's progress.
 */
import { z } from "zod";
import { parseIndexes } from "../../../../proto/indexes";
import { ANNOTATIONS, LABELS } from "./names";

const Condition = z.object({ type: z.string(), status: z.string(), reason: z.string().optional(), message: z.string().optional() });

const RawJob = z.object({
  metadata: z.object({
    name: z.string(),
    uid: z.string().optional(),
    labels: z.record(z.string(), z.string()).default({}),
    annotations: z.record(z.string(), z.string()).default({}),
    deletionTimestamp: z.string().optional(),
  }),
  spec: z.object({ completions: z.number().int().optional(), parallelism: z.number().int().optional() }).default({}),
  status: z
    .object({
      active: z.number().int().optional(),
      ready: z.number().int().optional(),
      succeeded: z.number().int().optional(),
      failed: z.number().int().optional(),
      completedIndexes: z.string().optional(),
      failedIndexes: z.string().optional(),
      conditions: z.array(Condition).optional(),
    })
    .default({}),
});

export interface ObservedJob {
  name: string;
  nodeRunId: string;
  runId: string;
  nodeId: string;
  attempt: number;
  /** The agent's own record of the attempt (Job annotation), raw JSON. */
  record: string | undefined;
  deleting: boolean;
  completions: number;
  active: number;
  completedIndexes: number[];
  failedIndexes: number[];
  /** Complete or Failed (with its reason), once the Job controller has decided. */
  finished: { outcome: "succeeded" | "failed"; reason: string | undefined; message: string | undefined } | null;
}

export function observeJob(raw: unknown): ObservedJob | null {
  const parsed = RawJob.safeParse(raw);
  if (!parsed.success) return null;
  const { metadata: m, spec, status } = parsed.data;
  const nodeRunId = m.annotations[ANNOTATIONS.nodeRunId];
  const attempt = Number(m.labels[LABELS.attempt]);
  if (!nodeRunId || !Number.isInteger(attempt)) return null; // not one of ours
  const cond = (type: string) => status.conditions?.find((c) => c.type === type && c.status === "True");
  const complete = cond("Complete");
  const failed = cond("Failed");
  return {
    name: m.name,
    nodeRunId,
    runId: m.annotations[ANNOTATIONS.runId] ?? m.labels[LABELS.run] ?? "",
    nodeId: m.labels[LABELS.node] ?? "",
    attempt,
    record: m.annotations[ANNOTATIONS.record],
    deleting: m.deletionTimestamp !== undefined,
    completions: spec.completions ?? 1,
    active: status.active ?? 0,
    completedIndexes: parseIndexes(status.completedIndexes),
    failedIndexes: parseIndexes(status.failedIndexes),
    finished: complete ? { outcome: "succeeded", reason: complete.reason, message: complete.message } : failed ? { outcome: "failed", reason: failed.reason, message: failed.message } : null,
  };
}

const Terminated = z.object({ exitCode: z.number().int(), reason: z.string().optional(), message: z.string().optional() });
const ContainerStatus = z.object({
  name: z.string(),
  state: z.object({ terminated: Terminated.optional(), waiting: z.object({ reason: z.string().optional(), message: z.string().optional() }).optional() }).default({}),
});
const RawPod = z.object({
  metadata: z.object({ name: z.string(), labels: z.record(z.string(), z.string()).default({}), annotations: z.record(z.string(), z.string()).default({}) }),
  status: z
    .object({
      phase: z.string().optional(),
      conditions: z.array(Condition).optional(),
      containerStatuses: z.array(ContainerStatus).optional(),
      initContainerStatuses: z.array(ContainerStatus).optional(),
    })
    .default({}),
});

/** Why a pod is not running yet, or how it ended. */
export interface ObservedPod {
  name: string;
  /** The Job it belongs to (label `batch.kubernetes.io/job-name`). */
  job: string;
  index: number;
  phase: string;
  /** The step's end: exit code, reason (OOMKilled, Error, DeadlineExceeded…) and the end of its stderr. */
  step: z.infer<typeof Terminated> | null;
  /** Waiting: Unschedulable (with the scheduler's words), ImagePullBackOff, ErrImagePull, CreateContainerConfigError… */
  waiting: { reason: string; message: string | undefined } | null;
}

export function observePod(raw: unknown): ObservedPod | null {
  const parsed = RawPod.safeParse(raw);
  if (!parsed.success) return null;
  const { metadata: m, status } = parsed.data;
  const job = m.labels["batch.kubernetes.io/job-name"] ?? m.labels["job-name"];
  const index = Number(m.annotations["batch.kubernetes.io/job-completion-index"] ?? m.labels["batch.kubernetes.io/job-completion-index"]);
  if (!job || !Number.isInteger(index)) return null;
  const step = status.containerStatuses?.find((c) => c.name === "step")?.state.terminated ?? null;
  const unschedulable = status.conditions?.find((c) => c.type === "PodScheduled" && c.status === "False" && c.reason === "Unschedulable");
  const stuck = [...(status.initContainerStatuses ?? []), ...(status.containerStatuses ?? [])].find(
    (c) => c.state.waiting?.reason && c.state.waiting.reason !== "PodInitializing" && c.state.waiting.reason !== "ContainerCreating",
  );
  const waiting = unschedulable ? { reason: "Unschedulable", message: unschedulable.message } : stuck ? { reason: stuck.state.waiting!.reason!, message: stuck.state.waiting!.message } : null;
  return {
    name: m.name,
    job,
    index,
    phase: status.phase ?? "Pending",
    step: step ? { exitCode: step.exitCode, ...(step.reason ? { reason: step.reason } : {}), ...(step.message ? { message: step.message } : {}) } : null,
    waiting,
  };
}
