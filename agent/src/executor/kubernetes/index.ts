/**
 * @module
 * The Kubernetes executor: one Indexed Job per node attempt (prepare.ts, job-spec.ts), watched —
 * not polled — through one list + watch per kind for the whole agent (Jobs, their pods, the
 * nodes); progress and ends are read from what the Job controller says (progress.ts). The
 * cluster is the state: Jobs carry their attempt's ids and MLflow runs (record.ts), so after a
 * restart the agent adopts running Jobs and reports ended ones, and a redelivered start finds
 * the Job it already made (its name comes from the node run and attempt).
 *
 * MLflow: the agent makes the node attempt's run and the partitions' runs before the Job, and
 * ends them from what Kubernetes says (an index in `completedIndexes` → FINISHED, in
 * `failedIndexes` → FAILED, the rest KILLED on a cancel or failure); the pods upload logs and
 * outputs (pod/).
 *
 * A partition retry (`WorkStart.retry`) is a Job of only the partitions it names (prepare.ts):
 * everything the agent reads of that Job goes through `nodeView` (progress.ts) first, so counts,
 * MLflow runs and failed partitions are in the node's partition numbers, never the Job's indexes.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { Heartbeat } from "../../../../proto/agent";
import type { WorkCancel, WorkStart } from "../../../../proto/messages";
import type { RunStatus } from "../../../../proto/mlflow";
import { errInfo } from "../../log";
import type { AttemptRef, AttemptReport, AttemptReporter, Executor, RecoveredAttempt } from "../types";
import { asFailure } from "../shared/errors";
import { endParentRuns, endRun } from "../shared/mlflow-runs";
import { PARTITION_TAGS } from "../shared/partitions";
import { isAlreadyExists, isNotFound, KubeApiError } from "./api";
import { allocatableOf, observeNode, type ObservedNode } from "./capacity";
import type { KubernetesContext, KubernetesExecutorOptions } from "./context";
import { Informer } from "./informer";
import { jobName, ownSelector } from "./names";
import { observeJob, observePod, type ObservedJob, type ObservedPod } from "./observed";
import { type PreparedAttempt, prepareAttempt } from "./prepare";
import { doneBeforeOf, nodeView, partitionFailuresOf, progressOf } from "./progress";
import { parseJobRecord, type JobRecord } from "./record";

export type { KubernetesExecutorOptions } from "./context";

interface Tracked {
  ref: AttemptRef;
  name: string;
  reporter: AttemptReporter;
  record: JobRecord;
  /** Partition counters last reported (JSON) and the waiting message last said. */
  reported: string;
  /** Indexes whose MLflow run has been ended. */
  settled: Set<number>;
  cancelling: boolean;
  ended: boolean;
  /** Until `running` is out, events carry the MLflow ids (as on the local executor). */
  runningReported: boolean;
}

/**
 * The pods the agent needs to see: waiting ones (Pending: why — Unschedulable, ImagePullBackOff…)
 * and Failed ones (their exit code and last words). Progress comes from the Job's status, so a
 * pod that runs or succeeded says nothing the agent uses: without them the agent receives 3
 * events per pod instead of 5 (created, bound; Running arrives as DELETED — Running, Succeeded
 * and the finalizer's removal are 3 events of a whole pod each, 5–6 KB of JSON), which at
 * 10,000 partitions is most of its CPU.
 */
const POD_PHASES_WATCHED = "status.phase!=Running,status.phase!=Succeeded";

/** Job failure reasons after which the indexes' retries (backoffLimitPerIndex) are spent, or a step said not to retry. */
const RETRIES_SPENT = new Set(["FailedIndexes", "MaxFailedIndexesExceeded", "BackoffLimitExceeded", "PodFailurePolicy"]);

const MLFLOW_END: Record<"succeeded" | "failed" | "cancelled", RunStatus> = { succeeded: "FINISHED", failed: "FAILED", cancelled: "KILLED" };

export class KubernetesExecutor implements Executor {
  private readonly jobs: Informer<ObservedJob>;
  private readonly pods: Informer<ObservedPod>;
  private readonly nodeInformer: Informer<ObservedNode>;
  /** The latest pod of each index, per Job. */
  private readonly podsOf = new Map<string, Map<number, ObservedPod>>();
  private readonly tracked = new Map<string, Tracked>();
  private readonly stop = new AbortController();
  private readonly loops: Promise<void>[] = [];
  private readonly ctx: KubernetesContext;
  private kubernetesVersion: string | null = null;
  private readonly tombstones: Set<string>;
  private readonly tombstoneFile: string;

  constructor(private readonly o: KubernetesExecutorOptions) {
    const ns = encodeURIComponent(o.namespace);
    const log = o.logger;
    const selector = ownSelector(o.clusterId);
    this.jobs = new Informer({
      api: o.api,
      path: `/apis/batch/v1/namespaces/${ns}/jobs`,
      labelSelector: selector,
      parse: observeJob,
      key: (j) => j.name,
      logger: log,
      onChange: (t, j) => this.onJob(t, j),
    });
    this.pods = new Informer({
      api: o.api,
      path: `/api/v1/namespaces/${ns}/pods`,
      labelSelector: selector,
      fieldSelector: POD_PHASES_WATCHED,
      parse: observePod,
      key: (p) => p.name,
      logger: log,
      onChange: (t, p) => this.onPod(t, p),
    });
    this.nodeInformer = new Informer({ api: o.api, path: "/api/v1/nodes", parse: observeNode, key: (n) => n.name, logger: log, onChange: () => {} });
    this.ctx = { o, nodes: () => this.nodeInformer.list() };
    this.tombstoneFile = join(o.stateDir, "cancelled-before-start.json");
    this.tombstones = new Set(existsSync(this.tombstoneFile) ? (JSON.parse(readFileSync(this.tombstoneFile, "utf8")) as string[]) : []);
  }

  /** Starts the watches and waits until each has listed once. */
  async open(): Promise<void> {
    await mkdir(this.o.stateDir, { recursive: true, mode: 0o700 });
    for (const i of [this.nodeInformer, this.pods, this.jobs]) this.loops.push(i.run(this.stop.signal));
    const version = await this.o.api.request<{ gitVersion?: string }>("GET", "/version").catch(() => null);
    this.kubernetesVersion = version?.gitVersion ?? null;
    await Promise.all([this.nodeInformer.hasSynced(), this.pods.hasSynced(), this.jobs.hasSynced()]);
  }

  // ---- reports -----------------------------------------------------------------------------

  private report(t: Tracked, event: AttemptReport): void {
    if (!t.runningReported) {
      event.mlflowRunId = t.record.nodeRunId;
      event.mlflowParentRunId = t.record.parentRunId;
    }
    try {
      t.reporter.report(event);
    } catch (err) {
      this.o.logger.error({ err: errInfo(err), job: t.name }, "reporter threw");
    }
  }

  // ---- start, cancel -----------------------------------------------------------------------

  async start(work: WorkStart, reporter: AttemptReporter): Promise<void> {
    const name = jobName(work.nodeId, work.nodeRunId, work.attempt);
    const ref: AttemptRef = { runId: work.runId, nodeRunId: work.nodeRunId, nodeId: work.nodeId, attempt: work.attempt };
    if (this.tombstones.has(name)) {
      reporter.report({ type: "cancelled", message: "cancelled before it started" });
      return;
    }
    const known = this.tracked.get(name);
    if (known) {
      known.reporter = reporter;
      return; // a redelivered start of an attempt already under way
    }
    const existing = this.jobs.get(name);
    if (existing) {
      this.adopt(existing, reporter, ref);
      return;
    }
    let prepared: PreparedAttempt;
    try {
      prepared = await prepareAttempt(this.ctx, work, (e) => reporter.report(e));
    } catch (e) {
      const failure = asFailure(e);
      if (!failure) throw e; // MLflow or the API server not reachable: NATS redelivers the start
      reporter.report({ type: "failed", message: failure.message.slice(0, 4000) });
      this.o.logger.warn({ job: name, reason: failure.message }, "the attempt cannot run");
      return;
    }
    const t: Tracked = { ref, name, reporter, record: prepared.record, reported: "", settled: new Set(), cancelling: false, ended: false, runningReported: false };
    const notes = prepared.notes.join("; ");
    if (prepared.cached) {
      // The cache has the result: the attempt succeeds without a pod, naming where its result is.
      await endRun(this.o.mlflow, prepared.record.nodeRunId, "FINISHED", this.now());
      this.report(t, { type: "succeeded", cachedFrom: prepared.cached.from, ...(prepared.cached.warning ? { message: prepared.cached.warning } : {}) });
      return;
    }
    if (!prepared.job) {
      // Nothing to partition: the attempt succeeds without a pod.
      await endRun(this.o.mlflow, prepared.record.nodeRunId, "FINISHED", this.now());
      this.report(t, { type: "succeeded", counts: { total: 0, done: 0, failed: 0, running: 0 }, ...(notes ? { message: notes } : {}) });
      return;
    }
    if (this.tombstones.has(name)) {
      // The cancel came while the attempt was being prepared.
      await endRun(this.o.mlflow, prepared.record.nodeRunId, "KILLED", this.now()).catch(() => undefined);
      reporter.report({ type: "cancelled", message: "cancelled before it started" });
      return;
    }
    try {
      await this.o.api.request("POST", `/apis/batch/v1/namespaces/${encodeURIComponent(this.o.namespace)}/jobs`, { body: prepared.job });
    } catch (e) {
      if (!isAlreadyExists(e)) {
        if (e instanceof KubeApiError && e.status >= 400 && e.status < 500 && e.status !== 429 && e.status !== 409) {
          // The API server refuses the Job as it is (invalid, forbidden): retrying cannot help.
          await endRun(this.o.mlflow, prepared.record.nodeRunId, "FAILED", this.now()).catch(() => undefined);
          reporter.report({ type: "failed", message: `the cluster refused the Job: ${e.message}`.slice(0, 4000) });
          return;
        }
        throw e;
      }
    }
    this.tracked.set(name, t);
    this.report(t, { type: "running", counts: { total: prepared.record.partitions, done: doneBeforeOf(prepared.record), failed: 0, running: 0 }, ...(notes ? { message: notes } : {}) });
    t.runningReported = true;
    this.o.logger.info({ job: name, partitions: prepared.record.partitions, mlflowRunId: prepared.record.nodeRunId }, "Job created");
    const job = this.jobs.get(name);
    if (job) this.evaluate(t, job);
  }

  /** Follows a Job made before (a restart, a redelivered start). */
  private adopt(job: ObservedJob, reporter: AttemptReporter, ref?: AttemptRef): Tracked | null {
    const t = this.track(job, reporter, ref);
    if (t) this.evaluate(t, job);
    return t;
  }

  private track(job: ObservedJob, reporter: AttemptReporter, ref?: AttemptRef): Tracked | null {
    const record = parseJobRecord(job.record);
    if (!record) {
      this.o.logger.error({ job: job.name }, "a Job of this agent without a readable record annotation; left alone");
      return null;
    }
    const t: Tracked = {
      ref: ref ?? { runId: job.runId, nodeRunId: job.nodeRunId, nodeId: job.nodeId, attempt: job.attempt },
      name: job.name,
      reporter,
      record,
      reported: "",
      settled: new Set(),
      cancelling: job.deleting,
      ended: false,
      runningReported: false,
    };
    this.tracked.set(job.name, t);
    return t;
  }

  async cancel(work: WorkCancel, reporter: AttemptReporter): Promise<void> {
    const name = jobName(work.nodeId, work.nodeRunId, work.attempt);
    let t = this.tracked.get(name);
    const job = this.jobs.get(name);
    if (!t && job) t = this.adopt(job, reporter) ?? undefined;
    if (t) {
      t.reporter = reporter;
      if (t.ended) return;
      t.cancelling = true;
    }
    try {
      // Foreground: the Job goes once its pods are gone; its DELETED event ends the attempt.
      await this.o.api.request("DELETE", `/apis/batch/v1/namespaces/${encodeURIComponent(this.o.namespace)}/jobs/${name}`, { query: { propagationPolicy: "Foreground" } });
      this.o.logger.info({ job: name }, "cancel: Job deleted (foreground)");
    } catch (e) {
      if (!isNotFound(e)) throw e;
      if (t) await this.end(t, "cancelled", "cancelled", null);
      else {
        // Not made (yet): a late start of it must not make it.
        this.tombstone(name);
        reporter.report({ type: "cancelled", message: "cancelled before it started" });
      }
    }
  }

  private tombstone(name: string): void {
    this.tombstones.add(name);
    // Bounded: the oldest go first (a start comes within minutes of its cancel, if at all).
    while (this.tombstones.size > 10_000) this.tombstones.delete(this.tombstones.values().next().value!);
    writeFileSync(this.tombstoneFile, JSON.stringify([...this.tombstones]), { mode: 0o600 });
  }

  // ---- what the watches say -------------------------------------------------------------------

  private onJob(type: "ADDED" | "MODIFIED" | "DELETED", job: ObservedJob): void {
    const t = this.tracked.get(job.name);
    if (type === "DELETED") {
      this.podsOf.delete(job.name);
      if (t && !t.ended)
        void this.end(t, t.cancelling ? "cancelled" : "failed", t.cancelling ? "cancelled" : "the Job was deleted before it ended (not by this agent)", job).catch((e: unknown) =>
          this.o.logger.error({ err: errInfo(e), job: job.name }, "ending the attempt failed"),
        );
      return;
    }
    if (t) this.evaluate(t, job);
  }

  private onPod(type: "ADDED" | "MODIFIED" | "DELETED", pod: ObservedPod): void {
    let byIndex = this.podsOf.get(pod.job);
    if (type === "DELETED") {
      if (byIndex?.get(pod.index)?.name === pod.name) byIndex.delete(pod.index);
      return;
    }
    if (!byIndex) {
      byIndex = new Map();
      this.podsOf.set(pod.job, byIndex);
    }
    const prev = byIndex.get(pod.index);
    // A retried index has a newer pod; a finished one is kept for its failure's words.
    if (!prev || prev.name === pod.name || pod.phase !== "Failed" || prev.phase === "Failed") byIndex.set(pod.index, pod);
    const t = this.tracked.get(pod.job);
    const job = this.jobs.get(pod.job);
    if (t && job && pod.waiting) this.evaluate(t, job);
  }

  /** Reports what changed, ends partitions' MLflow runs, and the attempt when the Job is done. */
  private evaluate(t: Tracked, job: ObservedJob): void {
    if (t.ended || t.cancelling) return;
    const v = nodeView(job, this.podsOf.get(job.name) ?? new Map(), t.record);
    const p = progressOf(v.job, v.pods, t.record.timeoutSeconds, v.doneBefore);
    this.settlePartitions(t, v.job);
    if (p.end) {
      void this.end(t, p.end.outcome, p.end.message, job).catch((e: unknown) => this.o.logger.error({ err: errInfo(e), job: job.name }, "ending the attempt failed"));
      return;
    }
    const now = JSON.stringify([p.counts, p.waiting]);
    if (now === t.reported) return;
    t.reported = now;
    this.report(t, { type: "progress", counts: p.counts, ...(p.waiting ? { message: p.waiting } : {}) });
  }

  /** A partition the Job controller counted as done or failed for good: its MLflow run ends so. `job`: in partition numbers (nodeView). */
  private settlePartitions(t: Tracked, job: ObservedJob): void {
    const ids = t.record.partitionRunIds;
    if (!ids) return;
    for (const [indexes, status] of [
      [job.completedIndexes, "FINISHED"],
      [job.failedIndexes, "FAILED"],
    ] as const) {
      for (const i of indexes) {
        if (t.settled.has(i) || !ids[i]) continue;
        t.settled.add(i);
        endRun(this.o.mlflow, ids[i], status, this.now()).catch((e: unknown) => {
          t.settled.delete(i); // tried again with the next change of the Job
          this.o.logger.warn({ err: errInfo(e), job: t.name, partition: i }, "could not end a partition's MLflow run yet");
        });
      }
    }
  }

  private async end(t: Tracked, outcome: "succeeded" | "failed" | "cancelled", message: string | null, job: ObservedJob | null): Promise<void> {
    if (t.ended) return;
    t.ended = true;
    const v = job ? nodeView(job, this.podsOf.get(job.name) ?? new Map(), t.record) : null;
    const counts = v ? { ...progressOf(v.job, new Map(), undefined, v.doneBefore).counts, running: 0 } : { total: t.record.partitions, done: doneBeforeOf(t.record), failed: 0, running: 0 };
    // MLflow first (idempotent: an ended run keeps its end), then the report: a crash between
    // them leaves the Job, and the next start of the agent reports it.
    const ids = t.record.partitionRunIds ?? [];
    const completed = new Set(v?.job.completedIndexes ?? []);
    const failed = new Set(v?.job.failedIndexes ?? []);
    for (let i = 0; i < ids.length; i++) {
      if (!ids[i]) continue; // a partition this attempt did not run (a partition retry)
      const status: RunStatus = completed.has(i) ? "FINISHED" : failed.has(i) ? "FAILED" : "KILLED";
      await endRun(this.o.mlflow, ids[i]!, status, this.now()).catch((e: unknown) => this.o.logger.warn({ err: errInfo(e), partition: i }, "could not end a partition's MLflow run"));
    }
    // A Job that failed because indexes failed has spent the node's retries on them (per index):
    // no further attempt. A timeout or a deleted Job may be retried as on the local executor.
    const final = outcome === "failed" && job?.finished?.outcome === "failed" && RETRIES_SPENT.has(job.finished.reason ?? "");
    // Which partitions failed while others completed, in this Job or before it (the control plane
    // may accept the node under its `minSuccessRatio`, or resume only those; the tag lets readers
    // of its outputs take this FAILED run). Only when the indexes' retries are spent: after a
    // timeout or a deleted Job, partitions neither completed nor failed would be left out.
    const partial = final && v && v.job.failedIndexes.length > 0 ? await partitionFailuresOf(v.job, v.pods, v.doneBefore) : undefined;
    if (partial?.failedPartitions) {
      await this.o.mlflow
        .setTag(t.record.nodeRunId, PARTITION_TAGS.failedPartitions, partial.failedPartitions)
        .catch((e: unknown) => this.o.logger.warn({ err: errInfo(e), job: t.name }, "could not tag the node's MLflow run"));
    }
    await endRun(this.o.mlflow, t.record.nodeRunId, MLFLOW_END[outcome], this.now()).catch((e: unknown) => this.o.logger.warn({ err: errInfo(e), job: t.name }, "could not end the node's MLflow run"));
    this.report(t, {
      type: outcome,
      counts,
      ...(message ? { message } : {}),
      ...(final ? { final } : {}),
      ...(partial?.failedPartitions ? { failedPartitions: partial.failedPartitions } : {}),
      ...(partial?.partitionFailures.length ? { partitionFailures: partial.partitionFailures } : {}),
    });
    this.tracked.delete(t.name);
    this.o.logger.info({ job: t.name, outcome, counts }, "attempt ended");
  }

  // ---- restart, DAG run ends, state --------------------------------------------------------------

  async reconcile(reporterFor: (ref: AttemptRef) => AttemptReporter): Promise<RecoveredAttempt[]> {
    const out: RecoveredAttempt[] = [];
    for (const job of this.jobs.list()) {
      if (this.tracked.has(job.name) || job.deleting) continue;
      const ref: AttemptRef = { runId: job.runId, nodeRunId: job.nodeRunId, nodeId: job.nodeId, attempt: job.attempt };
      const record = parseJobRecord(job.record);
      const v = record ? nodeView(job, this.podsOf.get(job.name) ?? new Map(), record) : { job, pods: this.podsOf.get(job.name) ?? new Map(), doneBefore: 0 };
      const p = progressOf(v.job, v.pods, record?.timeoutSeconds, v.doneBefore);
      if (p.end) {
        // Ended while the agent was away: end its MLflow runs (idempotent) and let the core report it.
        const t = this.track(job, { report: () => {} }, ref);
        if (t) {
          t.runningReported = true;
          await this.end(t, p.end.outcome, p.end.message, job);
        }
        out.push({ ...ref, state: p.end.outcome, counts: p.counts, ...(p.end.message ? { message: p.end.message } : {}), ...(t ? { mlflowRunId: t.record.nodeRunId } : {}) });
        continue;
      }
      const t = this.adopt(job, reporterFor(ref), ref);
      if (t) out.push({ ...ref, state: "running", counts: p.counts, mlflowRunId: t.record.nodeRunId });
    }
    return out;
  }

  async runEnded(runId: string, status: "succeeded" | "failed" | "cancelled"): Promise<void> {
    // The experiments of the run's parent: from its Jobs here (Jobs outlive the agent; they go after their TTL).
    const experiments = new Set<string>();
    for (const t of this.tracked.values()) if (t.ref.runId === runId) experiments.add(t.record.experimentId);
    for (const job of this.jobs.list())
      if (job.runId === runId) {
        const r = parseJobRecord(job.record);
        if (r) experiments.add(r.experimentId);
      }
    if (experiments.size === 0) {
      this.o.logger.info({ runId, status }, "DAG run ended; no Job of it is known here");
      return;
    }
    const ended = await endParentRuns(this.o.mlflow, [...experiments], runId, status, this.now());
    this.o.logger.info({ runId, status, parentRuns: ended }, ended.length > 0 ? "DAG run ended; its MLflow parent run is closed" : "DAG run ended; its MLflow parent run was already closed");
  }

  running(): number {
    return this.tracked.size;
  }

  /** The heartbeat's view of the cluster, and what builds its images. */
  describe(): Pick<Heartbeat, "kubernetesVersion" | "allocatable" | "builder"> {
    return { kubernetesVersion: this.kubernetesVersion, allocatable: allocatableOf(this.nodeInformer.list()), builder: this.o.images?.service.builder.description ?? null };
  }

  async close(): Promise<void> {
    this.stop.abort();
    await Promise.allSettled(this.loops);
    this.o.api.close();
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }
}

export async function createKubernetesExecutor(o: KubernetesExecutorOptions): Promise<KubernetesExecutor> {
  const ex = new KubernetesExecutor(o);
  await ex.open();
  return ex;
}
