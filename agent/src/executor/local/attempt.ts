/**
 * @module
 * One node attempt on this machine: preparation (project, MLflow runs, inputs, command,
 * manifest), then a single loop that owns every change of the attempt's state — spawning
 * partitions within `parallelism` and the executor's process slots, noticing exits, timeouts,
 * cancellation and the first failure, uploading logs and outputs, ending the MLflow runs, and
 * reporting. Every change is written to the attempt's record before it is acted on where a
 * crash could otherwise lose it, so a new executor over the same state dir carries on.
 */
import { existsSync } from "node:fs";
import { mkdir, readFile, realpath, rm, stat, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { isMlflowApiError, isMlflowClientError, isRetryable, type RunStatus } from "../../../../proto/mlflow";
import { checkParameters, resolveCommand, isMLprojectError } from "../../../../proto/mlproject";
import type { AttemptOutcome } from "../../../../proto/status";
import type { AttemptReport, AttemptReporter } from "../types";
import { downloadInputs, listFiles, OWN_ARTIFACTS, uploadDir } from "./artifacts";
import { AttemptFailure, RetryableStartError } from "./errors";
import { computeManifest, sliceFiles } from "./manifest";
import { endRun, EXPERIMENT_TAGS, findOrCreateNodeRun, findOrCreateParentRun, findOrCreatePartitionRun, markParentRunning } from "./mlflow-runs";
import type { ExecutorContext } from "./options";
import { groupAlive, isAlive, pidStartStamp, readExitCode, readPidFile, signalGroup, spawnDetached, tailFile } from "./process";
import { copyUnderRoot, isUnder, realRoot, resolveUnderRoot } from "./paths";
import { fetchProject, loadEntryPoint } from "./project";
import { type AttemptRecord, type AttemptStore, type PartitionRecord, TERMINAL_PHASES } from "./state";

type Counts = NonNullable<AttemptReport["counts"]>;

class Cancelled extends Error {}

export class Attempt {
  readonly rec: AttemptRecord;
  private reporter: AttemptReporter;
  /** Partitions holding one of the executor's slots. */
  private readonly holding = new Set<number>();
  private wakeUp: (() => void) | undefined;
  private loopPromise: Promise<void> | undefined;
  private stopped = false;
  private lastCounts = "";
  /** Strict-check warnings about the node's parameters (reported with `running`). */
  private paramWarnings: string | undefined;
  private lastLogUpload = 0;
  /** When SIGTERM went to the running partitions (for the SIGKILL that follows). */
  private termSentAt: number | undefined;
  private readonly unsubscribe: () => void;
  /** Resolves when the attempt reached a terminal phase (or the executor closed). */
  readonly done: Promise<void>;
  private resolveDone!: () => void;

  constructor(
    private readonly ctx: ExecutorContext,
    private readonly store: AttemptStore,
    rec: AttemptRecord,
    reporter: AttemptReporter,
  ) {
    this.rec = rec;
    this.reporter = reporter;
    this.done = new Promise((r) => (this.resolveDone = r));
    this.lastLogUpload = ctx.now();
    this.unsubscribe = ctx.slots.onRelease(() => this.wake());
  }

  get terminal(): boolean {
    return TERMINAL_PHASES.has(this.rec.phase);
  }

  private get work() {
    return this.rec.work!;
  }

  private save(): Promise<void> {
    this.rec.updatedAt = this.ctx.now();
    return this.store.save(this.rec);
  }

  private report(event: AttemptReport): void {
    // Until `running` is out, events carry the node's MLflow run and the DAG run's parent (the
    // control plane shows both; it keeps the first parent it hears of).
    if (!this.rec.runningReported && this.rec.mlflow?.nodeRunId) {
      event.mlflowRunId = this.rec.mlflow.nodeRunId;
      event.mlflowParentRunId = this.rec.mlflow.parentRunId;
    }
    try {
      this.reporter.report(event);
    } catch (e) {
      this.ctx.log.error({ err: e, attempt: this.rec.ref }, "reporter threw");
    }
  }

  private logCtx(extra: object = {}): object {
    return { nodeRunId: this.rec.ref.nodeRunId, attempt: this.rec.ref.attempt, nodeId: this.rec.ref.nodeId, ...extra };
  }

  // ---- preparation ------------------------------------------------------------------------------

  /**
   * Everything before the first process: resolves once the attempt is durably running (or has
   * ended: failed, cancelled). Rejects with RetryableStartError when MLflow (or the disk) is not
   * ready; the record keeps what was done, and the next start continues from there.
   */
  prepare(): Promise<void> {
    this.preparing ??= this.doPrepareAndRun();
    return this.preparing;
  }

  /** While preparation runs: its promise (a redelivered start waits for the same outcome). */
  preparing: Promise<void> | undefined;

  private async doPrepareAndRun(): Promise<void> {
    try {
      await this.doPrepare();
    } catch (e) {
      // A cancel (or the core giving up) that came while preparation was failing wins over retrying.
      const cancelled = e instanceof Cancelled || this.rec.cancelRequested === true;
      const failure = cancelled ? undefined : (asFailure(e) ?? (this.rec.failRequested !== undefined ? new AttemptFailure(this.rec.failRequested, { cause: e }) : undefined));
      if (cancelled || failure) {
        if (failure) this.rec.message = failure.message;
        // Ending the MLflow run may fail too (MLflow down): the loop then retries it.
        return this.finish(failure ? "failed" : "cancelled").catch((err: unknown) => {
          this.ctx.log.warn(this.logCtx({ err }), "could not end the attempt yet; retrying");
          this.run();
        });
      }
      this.ctx.log.warn(this.logCtx({ err: e }), "attempt preparation failed; it will be retried");
      throw new RetryableStartError(`could not start ${this.rec.ref.nodeId} attempt ${this.rec.ref.attempt}: ${errMessage(e)}`, { cause: e });
    }
    this.run();
  }

  private checkCancel(): void {
    if (this.rec.cancelRequested) throw new Cancelled();
    if (this.rec.failRequested !== undefined) throw new AttemptFailure(this.rec.failRequested);
  }

  private async doPrepare(): Promise<void> {
    const { ctx, work } = this;
    const node = work.node;
    this.checkCancel();
    const fetched = await fetchProject(node.project, { projectsRoot: ctx.projectsRoot, gitCacheDir: ctx.gitCacheDir, gitBin: ctx.gitBin });
    const launcherEnv = ctx.baseEnv as Record<string, string | undefined>;
    const loaded = await loadEntryPoint(fetched.dir, node.entryPoint, node.parameters, launcherEnv);
    this.rec.project = { ...fetched, entryPoint: node.entryPoint, params: loaded.params };
    await this.save();

    // MLflow: experiment, parent, the node attempt's run (found again by tag on a retry).
    this.checkCancel();
    if (!this.rec.mlflow?.nodeRunId) {
      const exp = await ctx.mlflow.getOrCreateExperiment(work.experiment || work.dag.name, { tags: EXPERIMENT_TAGS });
      const parentRunId = work.mlflowParentRunId ?? (await findOrCreateParentRun(ctx.mlflow, exp.experimentId, work));
      // The DAG run is running while any attempt of it does; only the control plane ends it (runEnded).
      if (!work.mlflowParentRunId) await markParentRunning(ctx.mlflow, parentRunId);
      this.rec.mlflow = { experimentId: exp.experimentId, parentRunId };
      this.rec.mlflow.nodeRunId = await findOrCreateNodeRun(ctx.mlflow, exp.experimentId, parentRunId, work, this.rec.project);
      await this.save();
    }
    const { experimentId, parentRunId, nodeRunId } = this.rec.mlflow as Required<NonNullable<AttemptRecord["mlflow"]>>;

    // Inputs (downloaded afresh: a retried preparation starts from an empty folder).
    this.checkCancel();
    const inputsDir = join(this.rec.dir, "inputs");
    const outputsDir = join(this.rec.dir, "outputs");
    await rm(inputsDir, { recursive: true, force: true });
    await downloadInputs({ mlflow: ctx.mlflow, experimentId, parentRunId, projectsRoot: ctx.projectsRoot }, node.inputs, inputsDir);
    await mkdir(outputsDir, { recursive: true });

    // The command, with `path` parameters resolved against the attempt folder (so a relative
    // path such as `inputs/corpus` names the downloaded input).
    this.checkCancel();
    try {
      this.rec.command = await resolveCommand(loaded.entryPoint, node.parameters ?? {}, {
        cwd: this.rec.dir,
        runStorageDir: join(this.rec.dir, "params"),
        // A local path value is handed to the step as it is, but only one below the projects root
        // (or the attempt's own folder, where `inputs/…` are) passes.
        exists: (p) => localPathParamExists(p, ctx.projectsRoot, this.rec.dir),
        download: (uri, dest) => downloadPathParam(uri, dest, ctx.projectsRoot),
      });
    } catch (e) {
      if (isMLprojectError(e)) throw new AttemptFailure(e.message, { cause: e });
      throw e;
    }
    // MLflow passes a declared float/int that is not a number through unchecked, and so do we;
    // but we say so (node message, MLflow tag, log), since the step will likely fail on it.
    const warnings = checkParameters(loaded.entryPoint, node.parameters ?? {}).map((w) => w.message);
    if (warnings.length > 0) {
      this.paramWarnings = `parameter warnings: ${warnings.join("; ")}`.slice(0, 4000);
      await ctx.mlflow.setTag(nodeRunId, "parallels.warnings", this.paramWarnings);
      ctx.log.warn(this.logCtx({ warnings }), "the node's parameters do not match the entry point's declared types");
    }

    // The manifest: once per attempt, stored as an artifact of the node's run.
    const partitionInput = node.partition?.input;
    const files = partitionInput === undefined ? [] : await listFiles(join(inputsDir, partitionInput));
    const manifest = computeManifest(node.partition, node.parallelism, files);
    this.rec.manifest = manifest;
    if (node.partition) {
      await ctx.mlflow.uploadArtifact(nodeRunId, `${OWN_ARTIFACTS}/manifest.json`, JSON.stringify(manifest, null, 1), "application/json");
    }
    this.rec.partitions = manifest.partitions.map((p) => ({ index: p.index, state: "pending" }));
    this.rec.env = {
      ...node.env,
      MLFLOW_TRACKING_URI: ctx.trackingUri,
      MLFLOW_EXPERIMENT_ID: experimentId,
      PARALLELS_INPUTS_DIR: inputsDir,
      PARALLELS_OUTPUTS_DIR: outputsDir,
    };
    this.checkCancel();
    this.rec.phase = "running";
    await this.save();
    this.report({ type: "running", counts: this.counts(), ...(this.paramWarnings ? { message: this.paramWarnings } : {}) });
    this.rec.runningReported = true;
    this.lastCounts = JSON.stringify(this.counts());
    await this.save();
    ctx.log.info(this.logCtx({ mlflowRunId: nodeRunId, partitions: manifest.count }), "attempt started");
  }

  // ---- the loop ---------------------------------------------------------------------------------

  /** Drive the attempt to its end in the background (also after a restart). */
  run(): void {
    // Preparation starts the loop itself when it is done (or ends the attempt).
    if (this.rec.phase === "preparing") return;
    if (this.loopPromise || this.terminal) {
      if (this.terminal) this.resolveDone();
      return;
    }
    // Processes recorded as running hold slots (even beyond the limit, after a restart).
    for (const p of this.rec.partitions ?? []) {
      if (p.state === "running" && !this.holding.has(p.index)) {
        this.ctx.slots.force();
        this.holding.add(p.index);
      }
    }
    this.loopPromise = this.loop().catch((e: unknown) => {
      this.ctx.log.error(this.logCtx({ err: e }), "attempt loop crashed");
    });
  }

  wake(): void {
    const w = this.wakeUp;
    this.wakeUp = undefined;
    w?.();
  }

  private async loop(): Promise<void> {
    while (!this.stopped && !this.terminal) {
      try {
        await this.tick();
      } catch (e) {
        this.ctx.log.warn(this.logCtx({ err: e }), "attempt step failed; retrying");
      }
      if (this.stopped || this.terminal) break;
      await new Promise<void>((r) => {
        this.wakeUp = r;
        void this.ctx.sleep(this.ctx.pollMs).then(r);
      });
    }
    this.unsubscribe();
    this.resolveDone();
  }

  /** Stop driving (executor closing); processes keep running and are reconciled later. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake();
    await this.loopPromise;
    this.unsubscribe();
    this.resolveDone();
  }

  /** The core gave up on starting this attempt: preparation ends it failed with `message` at its next step. */
  requestFail(message: string): Promise<void> {
    this.rec.failRequested = message;
    const saved = this.save();
    this.wake();
    return saved;
  }

  requestCancel(): Promise<void> {
    this.rec.cancelRequested = true;
    const saved = this.save();
    this.wake();
    return saved;
  }

  setReporter(r: AttemptReporter): void {
    this.reporter = r;
  }

  private partitionDir(index: number): string {
    return join(this.rec.dir, "partitions", String(index));
  }

  private counts(): Counts {
    const ps = this.rec.partitions ?? [];
    return {
      total: ps.length,
      done: ps.filter((p) => p.state === "exited" && p.exitCode === 0).length,
      failed: ps.filter((p) => p.state === "exited" && p.exitCode !== 0).length,
      running: ps.filter((p) => p.state === "running").length,
    };
  }

  private async tick(): Promise<void> {
    if (this.rec.phase === "finishing") return this.finish(this.rec.outcome ?? "failed");
    const ps = this.rec.partitions ?? [];
    const now = this.ctx.now();
    let changed = false;

    // 1. Exits.
    for (const p of ps.filter((p) => p.state === "running")) {
      if (await this.checkExit(p)) changed = true;
    }

    // 2. Why to stop: cancel, timeout, first failure.
    const stopping = this.rec.cancelRequested || this.rec.message !== undefined;
    if (!stopping) {
      const timeout = this.work.node.timeoutSeconds;
      const failedPart = ps.find((p) => p.state === "exited" && p.exitCode !== 0);
      if (timeout !== undefined && this.rec.startedAt !== undefined && now - this.rec.startedAt > timeout * 1000) {
        this.rec.message = `timed out after ${timeout} s (timeoutSeconds); the running processes were killed`;
        for (const p of ps.filter((p) => p.state === "running")) p.endReason = "timeout";
        changed = true;
      } else if (failedPart) {
        this.rec.message = await this.failureMessage(failedPart);
        for (const p of ps.filter((p) => p.state === "running")) p.endReason = "failFast";
        changed = true;
      }
    }
    if (this.rec.cancelRequested) for (const p of ps.filter((p) => p.state === "running")) p.endReason = "cancelled";
    if (changed) await this.save();

    // 3. Stop the running processes (SIGTERM, then SIGKILL after the grace period), or start more.
    const running = ps.filter((p) => p.state === "running");
    if (this.rec.cancelRequested || this.rec.message !== undefined) {
      if (running.length > 0) this.terminate(running, now);
    } else {
      await this.spawnPending();
    }

    // 4. Logs and nested runs of the partitions that ended.
    for (const p of ps.filter((p) => p.state === "exited" && !p.settled)) await this.settlePartition(p);

    // 5. Logs of the running steps, now and then (readable in MLflow while they run).
    if (this.ctx.logUploadMs > 0 && now - this.lastLogUpload >= this.ctx.logUploadMs) {
      this.lastLogUpload = now;
      for (const p of ps.filter((p) => p.state === "running")) {
        await this.uploadLogs(p.mlflowRunId ?? this.rec.mlflow!.nodeRunId!, p.index).catch((e: unknown) => {
          this.ctx.log.warn(this.logCtx({ err: e, partition: p.index }), "could not upload logs yet");
        });
      }
    }

    // 6. Progress.
    const c = this.counts();
    const key = JSON.stringify(c);
    if (key !== this.lastCounts) {
      this.lastCounts = key;
      this.report({ type: "progress", counts: c });
    }

    // 7. The end.
    const stillRunning = ps.some((p) => p.state === "running");
    const pending = ps.some((p) => p.state === "pending");
    const unsettled = ps.some((p) => p.state === "exited" && !p.settled);
    const stopping2 = this.rec.cancelRequested || this.rec.message !== undefined;
    if (!stillRunning && !unsettled && (!pending || stopping2)) {
      await this.finish(this.rec.cancelRequested ? "cancelled" : this.rec.message !== undefined ? "failed" : "succeeded");
    }
  }

  private async checkExit(p: PartitionRecord): Promise<boolean> {
    const dir = this.partitionDir(p.index);
    if (p.pid === undefined) {
      // Spawned just before a crash: the wrapper wrote its pid; or it never started.
      const pid = await readPidFile(dir);
      if (pid === undefined) {
        if ((await readExitCode(dir)) === undefined) {
          p.state = "pending";
          this.releaseSlot(p.index);
          return true;
        }
      } else {
        p.pid = pid;
        const start = pidStartStamp(pid);
        if (start !== undefined) p.pidStart = start;
      }
    }
    const code = await readExitCode(dir);
    if (code !== undefined) {
      // A step being stopped leaves nothing behind (background children of its shell).
      if (p.endReason !== undefined && p.pid !== undefined && groupAlive(p.pid)) signalGroup(p.pid, "SIGKILL");
      this.markExited(p, code);
      return true;
    }
    if (p.pid !== undefined && isAlive(p.pid, p.pidStart)) return false;
    // The wrapper is gone without an exit file: killed (SIGKILL) or lost. Read once more (race).
    const late = await readExitCode(dir);
    if (late !== undefined) this.markExited(p, late);
    else {
      if (p.pid !== undefined && groupAlive(p.pid)) signalGroup(p.pid, "SIGKILL"); // leftovers of the group
      p.endReason ??= "vanished";
      this.markExited(p, null);
    }
    return true;
  }

  private markExited(p: PartitionRecord, code: number | null): void {
    p.state = "exited";
    p.exitCode = code;
    p.endedAt = this.ctx.now();
    this.releaseSlot(p.index);
  }

  private releaseSlot(index: number): void {
    if (this.holding.delete(index)) this.ctx.slots.release();
  }

  private terminate(running: PartitionRecord[], now: number): void {
    if (this.termSentAt === undefined) {
      this.termSentAt = now;
      for (const p of running) if (p.pid !== undefined) signalGroup(p.pid, "SIGTERM");
    } else if (now - this.termSentAt >= this.ctx.killGraceMs) {
      for (const p of running) if (p.pid !== undefined) signalGroup(p.pid, "SIGKILL");
    }
  }

  private async spawnPending(): Promise<void> {
    const ps = this.rec.partitions ?? [];
    const limit = this.work.node.parallelism;
    let running = ps.filter((x) => x.state === "running").length;
    for (const p of ps) {
      if (p.state !== "pending") continue;
      if (running >= limit) break;
      if (!this.ctx.slots.tryAcquire()) break;
      this.holding.add(p.index);
      try {
        await this.spawnPartition(p);
        running++;
      } catch (e) {
        this.releaseSlot(p.index);
        if ((p.state as PartitionRecord["state"]) === "running" && p.pid === undefined) p.state = "pending";
        const failure = asFailure(e);
        if (failure) {
          // The process cannot start at all (e.g. the shell is missing): fail the attempt.
          p.state = "exited";
          p.exitCode = null;
          p.endReason = "spawn";
          this.rec.message = `partition ${p.index} could not start: ${failure.message}`;
          await this.save();
          return;
        }
        this.ctx.log.warn(this.logCtx({ err: e, partition: p.index }), "could not start a partition yet; retrying");
        return;
      }
    }
  }

  private async spawnPartition(p: PartitionRecord): Promise<void> {
    const { ctx, rec } = this;
    const manifest = rec.manifest!;
    const mlflowIds = rec.mlflow as Required<NonNullable<AttemptRecord["mlflow"]>>;
    if (manifest.nested && !p.mlflowRunId) {
      p.mlflowRunId = await findOrCreatePartitionRun(ctx.mlflow, mlflowIds.experimentId, mlflowIds.nodeRunId, this.work, rec.project!, p.index, manifest.count);
      await this.save();
    }
    const dir = this.partitionDir(p.index);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    const env: NodeJS.ProcessEnv = { ...ctx.baseEnv, ...rec.env, MLFLOW_RUN_ID: p.mlflowRunId ?? mlflowIds.nodeRunId };
    if (manifest.nested) {
      const manifestPath = join(dir, "manifest.json");
      await writeFile(manifestPath, `${JSON.stringify(sliceFiles(manifest, p.index))}\n`);
      env.PARALLELS_PARTITION_INDEX = String(p.index);
      env.PARALLELS_PARTITION_COUNT = String(manifest.count);
      env.PARALLELS_PARTITION_MANIFEST = manifestPath;
    }
    // Intent first: a crash between spawn and the next save is found again by the pid file.
    p.state = "running";
    p.startedAt = ctx.now();
    rec.startedAt ??= p.startedAt;
    await this.save();
    let spawned;
    try {
      spawned = await spawnDetached({ command: rec.command!, shell: ctx.shell, cwd: rec.project!.dir, dir, env });
    } catch (e) {
      p.state = "pending";
      throw new AttemptFailure(`${ctx.shell}: ${errMessage(e)}`, { cause: e });
    }
    p.pid = spawned.pid;
    if (spawned.pidStart !== undefined) p.pidStart = spawned.pidStart;
    void spawned.exited.then(() => this.wake());
    await this.save();
  }

  private async failureMessage(p: PartitionRecord): Promise<string> {
    const where = this.rec.manifest?.nested ? `partition ${p.index} of ${this.rec.manifest.count}` : "the step";
    const how = p.exitCode === null ? "ended without an exit code (killed)" : `exited with code ${p.exitCode}`;
    const tail = await tailFile(join(this.partitionDir(p.index), "stderr.log"), this.ctx.stderrTailLines);
    return `${where} ${how}${tail ? `; last lines of stderr:\n${tail}` : " (stderr was empty)"}`;
  }

  /** Upload a partition's logs and end its nested run. */
  private async settlePartition(p: PartitionRecord): Promise<void> {
    const { ctx, rec } = this;
    const target = p.mlflowRunId ?? rec.mlflow!.nodeRunId!;
    await this.uploadLogs(target, p.index);
    if (p.mlflowRunId) {
      const status: RunStatus =
        p.endReason === "cancelled" || p.endReason === "failFast" ? "KILLED" : p.exitCode === 0 ? "FINISHED" : "FAILED";
      await endRun(ctx.mlflow, p.mlflowRunId, status, p.endedAt ?? ctx.now());
    }
    p.settled = true;
    await this.save();
  }

  private async uploadLogs(runId: string, index: number): Promise<void> {
    const dir = this.partitionDir(index);
    for (const name of ["stdout.log", "stderr.log"]) {
      let data: Uint8Array;
      try {
        data = await readFile(join(dir, name));
      } catch {
        continue; // never started
      }
      await this.ctx.mlflow.uploadArtifact(runId, `${OWN_ARTIFACTS}/logs/${name}`, data, "text/plain; charset=utf-8");
    }
  }

  // ---- the end ------------------------------------------------------------------------------------

  private async finish(outcome: AttemptOutcome): Promise<void> {
    const { ctx, rec } = this;
    const nodeRunId = rec.mlflow?.nodeRunId;
    if (rec.phase !== "finishing" || rec.outcome !== outcome) {
      rec.phase = "finishing";
      rec.outcome = outcome;
      await this.save();
    }
    if (nodeRunId) {
      if (outcome !== "cancelled") {
        const outputs = join(rec.dir, "outputs");
        if (existsSync(outputs)) await uploadDir(ctx.mlflow, nodeRunId, outputs, "");
      }
      // Nested runs of partitions that never ran stay out; those that ran were ended in settlePartition.
      const status: RunStatus = outcome === "succeeded" ? "FINISHED" : outcome === "failed" ? "FAILED" : "KILLED";
      await endRun(ctx.mlflow, nodeRunId, status, ctx.now());
    }
    // The parent run stays as it is: the DAG run may go on (other nodes, a retry); the control
    // plane says when it is over and the executor's `runEnded` ends the parent then.
    rec.phase = outcome;
    await this.save();
    const event: AttemptReport = { type: outcome };
    if (rec.partitions) event.counts = this.counts();
    if (outcome === "failed" && rec.message) event.message = rec.message.slice(0, 4000);
    if (outcome === "cancelled") event.message = "cancelled";
    this.report(event);
    rec.runningReported = true;
    rec.finalReported = true;
    await this.save();
    ctx.log.info(this.logCtx({ outcome, message: rec.message }), "attempt ended");
    for (const i of [...this.holding]) this.releaseSlot(i);
    this.unsubscribe(); // also when it ended in preparation (no loop ran)
    if (!ctx.keepWorkDirs) await rm(rec.dir, { recursive: true, force: true }).catch(() => undefined);
    this.resolveDone();
  }
}

/** A deterministic failure (report `failed`), or undefined for trouble worth retrying. */
function asFailure(e: unknown): AttemptFailure | undefined {
  if (e instanceof AttemptFailure) return e;
  if (isMlflowClientError(e) && e.code !== "BAD_RESPONSE") return new AttemptFailure(e.message, { cause: e });
  if (isMlflowApiError(e) && !isRetryable(e)) return new AttemptFailure(`MLflow refused: ${e.message}`, { cause: e });
  return undefined;
}

function errMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** `path` parameters with a URI: only local files below the projects root are supported here. */
async function downloadPathParam(uri: string, dest: string, projectsRoot: string): Promise<string> {
  if (!uri.startsWith("file:")) {
    throw new AttemptFailure(`path parameter ${uri}: only local paths and file:// URIs are supported by the local executor`);
  }
  let src: string;
  try {
    src = fileURLToPath(uri);
  } catch (e) {
    throw new AttemptFailure(`path parameter ${uri}: ${errMessage(e)}`);
  }
  const real = await resolveUnderRoot(projectsRoot, src, `path parameter ${uri}`, "file-or-dir");
  await mkdir(dest, { recursive: true });
  const target = join(dest, basename(src));
  await copyUnderRoot(projectsRoot, real, target, `path parameter ${uri}`);
  return target;
}

/** The engine's `os.path.exists` for local `path` values (also `file:` ones): only below the projects root or the attempt folder. */
async function localPathParamExists(abs: string, projectsRoot: string, attemptDir: string): Promise<boolean> {
  if (!existsSync(abs)) return false;
  const real = await realpath(abs);
  if (!isUnder(realRoot(projectsRoot), real) && !isUnder(realRoot(attemptDir), real)) {
    throw new AttemptFailure(`path parameter ${abs} is outside the projects root ${projectsRoot}; the local executor reads local paths only below --projects-root`);
  }
  const s = await stat(real);
  if (!s.isFile() && !s.isDirectory()) throw new AttemptFailure(`path parameter ${abs} is not a regular file or folder`);
  return true;
}
