/**
 * @module
 * A running attempt's partition processes: spawns them within the node's `parallelism` and the
 * executor's process slots, notices exits (also of processes started before an agent restart),
 * timeouts and cancellation, which stop the rest (SIGTERM, then SIGKILL) — a failing partition
 * does not stop its siblings (the attempt's failure then names the partitions that failed) —, uploads
 * logs while steps run and when they end, ends the partitions' nested MLflow runs (up to the
 * limit; beyond it, the partitions table: table.ts), and reports progress (progress.ts). A
 * partition's changes are appended to the record's journal (state.ts), never a rewrite of it. One {@link Supervisor.step} at a time; it says when the attempt is to end, and how.
 */
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { RunStatus } from "../../../../../proto/mlflow";
import type { AttemptOutcome } from "../../../../../proto/status";
import { AttemptFailure, asFailure, errMessage } from "../../shared/errors";
import { sliceFiles, sliceMetadata } from "../../shared/manifest";
import { sidecarPath } from "../../shared/metadata";
import { partialFailure } from "../../shared/partitions";
import { partitionLogsDir } from "../../shared/partition-runs";
import { endRun, findOrCreatePartitionRun } from "../../shared/mlflow-runs";
import { groupAlive, isAlive, pidStartStamp, readExitCode, readPidFile, signalGroup, spawnDetached, tailFile, type Spawned } from "../process";
import { splitImageRef } from "../../../../../proto/images";
import { runTool } from "../../../images/buildah";
import { containerName, podmanCommand } from "../containers";
import { attemptKey, partitionCounts, type AttemptRecord, type PartitionRecord } from "../state";

/** Variables a step gets besides the node's `env`: MLflow's run and the partition's. */
const STEP_VARIABLES = new Set(["MLFLOW_RUN_ID", "PARALLELS_PARTITION_INDEX", "PARALLELS_PARTITION_COUNT", "PARALLELS_PARTITION_MANIFEST", "PARALLELS_PARTITION_METADATA", "PARALLELS_METADATA_FILE"]);
import { ProgressThrottle } from "./progress";
import type { AttemptScope } from "./scope";
import { uploadPartitionsTable } from "./table";

export class Supervisor {
  /** Partitions holding one of the executor's slots. */
  private readonly holding = new Set<number>();
  private lastLogUpload: number;
  /** When SIGTERM went to the running partitions (for the SIGKILL that follows). */
  private termSentAt: number | undefined;
  /** The executor's base environment and the attempt's, which every partition starts from. */
  private attemptEnv: NodeJS.ProcessEnv | undefined;
  private readonly progress: ProgressThrottle;

  constructor(private readonly a: AttemptScope) {
    this.lastLogUpload = a.ctx.now();
    this.progress = new ProgressThrottle(() => a.reportedCounts);
  }

  private get rec(): AttemptRecord {
    return this.a.rec;
  }

  /** Processes recorded as running hold slots (even beyond the limit, after a restart). */
  holdSlotsOfRunning(): void {
    for (const p of this.rec.partitions ?? []) {
      if (p.state === "running" && !this.holding.has(p.index)) {
        this.a.ctx.slots.force();
        this.holding.add(p.index);
      }
    }
  }

  /** Gives back every slot this attempt holds (it ended). */
  releaseAll(): void {
    for (const i of [...this.holding]) this.releaseSlot(i);
  }

  /** One step of the attempt's life; resolves with its outcome once nothing runs or is left to run. */
  async step(): Promise<AttemptOutcome | undefined> {
    const { a, rec } = this;
    const ps = rec.partitions ?? [];
    const now = a.ctx.now();
    let changed = false;

    // 1. Exits (recorded together: one append for all the partitions that ended).
    const exited: PartitionRecord[] = [];
    for (const p of ps.filter((p) => p.state === "running")) {
      if (await this.checkExit(p)) exited.push(p);
    }
    await a.savePartitions(exited);

    // 2. Why to stop: cancel, timeout. A failing partition does not stop its siblings: they run
    // to their end, and the attempt's failure names the partitions that failed (partitions.ts).
    const stopping = rec.cancelRequested || rec.message !== undefined;
    if (!stopping) {
      const timeout = rec.work!.node.timeoutSeconds;
      if (timeout !== undefined && rec.startedAt !== undefined && now - rec.startedAt > timeout * 1000) {
        rec.message = `timed out after ${timeout} s (timeoutSeconds); the running processes were killed`;
        for (const p of ps.filter((p) => p.state === "running")) p.endReason = "timeout";
        changed = true;
      }
    }
    if (rec.cancelRequested) for (const p of ps.filter((p) => p.state === "running")) p.endReason = "cancelled";
    if (changed) await a.save();

    // 3. Stop the running processes (SIGTERM, then SIGKILL after the grace period), or start more.
    const running = ps.filter((p) => p.state === "running");
    if (rec.cancelRequested || rec.message !== undefined) {
      if (running.length > 0) this.terminate(running, now);
    } else {
      await this.spawnPending();
    }

    // 4. Logs and nested runs of the partitions that ended.
    const settled: PartitionRecord[] = [];
    for (const p of ps.filter((p) => p.state === "exited" && !p.settled)) {
      await this.settlePartition(p);
      settled.push(p);
    }
    await a.savePartitions(settled);

    // 5. Logs of the running steps, now and then (readable in MLflow while they run); beyond the
    // limit of nested runs, the partitions table too.
    if (a.ctx.logUploadMs > 0 && now - this.lastLogUpload >= a.ctx.logUploadMs) {
      this.lastLogUpload = now;
      for (const p of ps.filter((p) => p.state === "running")) {
        await this.uploadLogs(p).catch((e: unknown) => {
          a.ctx.log.warn(a.logCtx({ err: e, partition: p.index }), "could not upload logs yet");
        });
      }
      await uploadPartitionsTable(a).catch((e: unknown) => a.ctx.log.warn(a.logCtx({ err: e }), "could not upload the partitions table yet"));
    }

    // 6. Progress (bounded per attempt whatever its partition count: progress.ts).
    const counts = partitionCounts(rec);
    if (this.progress.due(counts, now)) a.report({ type: "progress", counts });

    // 7. The end.
    const stillRunning = ps.some((p) => p.state === "running");
    const pending = ps.some((p) => p.state === "pending");
    const unsettled = ps.some((p) => p.state === "exited" && !p.settled);
    const stopping2 = rec.cancelRequested || rec.message !== undefined;
    if (!stillRunning && !unsettled && (!pending || stopping2)) {
      if (rec.cancelRequested) return "cancelled";
      if (rec.message !== undefined) return "failed";
      return (await this.partitionsFailed()) ? "failed" : "succeeded";
    }
    return undefined;
  }

  /**
   * Every partition ended by itself: when some failed, the attempt's failure says which (and,
   * when others succeeded, names them for a retry of only those). Saved before the attempt ends.
   */
  private async partitionsFailed(): Promise<boolean> {
    const { a, rec } = this;
    const node = rec.work!.node;
    const report = await partialFailure(
      (rec.partitions ?? []).map((p) => ({
        index: p.index,
        exitCode: p.exitCode ?? null,
        ...(p.endReason ? { reason: p.endReason } : {}),
        stderr: () => tailFile(join(this.partitionDir(p.index), "stderr.log"), a.ctx.stderrTailLines),
      })),
      {
        total: rec.retry?.total ?? rec.manifest?.count ?? 1,
        doneBefore: rec.retry?.doneBefore ?? 0,
        nested: rec.manifest?.nested ?? false,
        ...(node.noRetryExitCodes ? { noRetryExitCodes: node.noRetryExitCodes } : {}),
      },
    );
    if (!report) return false;
    rec.message = report.message;
    if (report.final) rec.finalFailure = true;
    if (report.failedPartitions) rec.failedPartitions = report.failedPartitions;
    if (rec.manifest?.nested) rec.partitionFailures = report.partitionFailures;
    await a.save();
    return true;
  }

  private partitionDir(index: number): string {
    return join(this.rec.dir, "partitions", String(index));
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
    p.endedAt = this.a.ctx.now();
    this.releaseSlot(p.index);
  }

  private releaseSlot(index: number): void {
    if (this.holding.delete(index)) this.a.ctx.slots.release();
  }

  private terminate(running: PartitionRecord[], now: number): void {
    if (this.termSentAt === undefined) {
      this.termSentAt = now;
      for (const p of running) if (p.pid !== undefined) signalGroup(p.pid, "SIGTERM");
      // The step is PID 1 of its container, which ignores signals it has no handler for: stop the container itself.
      if (this.rec.image) for (const p of running) this.podman(["stop", "--time", String(Math.ceil(this.a.ctx.killGraceMs / 1000)), containerName(attemptKey(this.rec.ref), p.index)]);
    } else if (now - this.termSentAt >= this.a.ctx.killGraceMs) {
      for (const p of running) if (p.pid !== undefined) signalGroup(p.pid, "SIGKILL");
      if (this.rec.image) for (const p of running) this.podman(["rm", "--force", "--time", "0", containerName(attemptKey(this.rec.ref), p.index)]);
    }
  }

  /** A podman command in the background (stopping a partition's container); its failure is only logged. */
  private podman(args: string[]): void {
    const c = this.a.ctx.containers;
    if (!c) return;
    runTool(c.podmanBin ?? "podman", args, { env: c.env ?? process.env }).then(
      (r) => r.code !== 0 && this.a.ctx.log.warn(this.a.logCtx({ args, stderr: r.stderr.trim() }), "podman could not stop a partition's container"),
      (e: unknown) => this.a.ctx.log.warn(this.a.logCtx({ err: e, args }), "podman could not stop a partition's container"),
    );
  }

  private async spawnPending(): Promise<void> {
    const { a, rec } = this;
    const ps = rec.partitions ?? [];
    const limit = rec.work!.node.parallelism;
    let running = ps.filter((x) => x.state === "running").length;
    const started: PartitionRecord[] = [];
    // Their pids, before this step ends (an executor closing waits for it); a crash before that
    // is what the wrapper's pid file is for (checkExit).
    const recordPids = () => a.savePartitions(started);
    for (const p of ps) {
      if (p.state !== "pending") continue;
      if (running >= limit) break;
      if (!a.ctx.slots.tryAcquire()) break;
      this.holding.add(p.index);
      try {
        await this.spawnPartition(p);
        started.push(p);
        running++;
      } catch (e) {
        await recordPids();
        this.releaseSlot(p.index);
        if ((p.state as PartitionRecord["state"]) === "running" && p.pid === undefined) p.state = "pending";
        const failure = asFailure(e);
        if (failure) {
          // The process cannot start at all (e.g. the shell is missing): fail the attempt.
          p.state = "exited";
          p.exitCode = null;
          p.endReason = "spawn";
          rec.message = `partition ${p.index} could not start: ${failure.message}`;
          await a.save();
          return;
        }
        a.ctx.log.warn(a.logCtx({ err: e, partition: p.index }), "could not start a partition yet; retrying");
        return;
      }
    }
    await recordPids();
  }

  private async spawnPartition(p: PartitionRecord): Promise<void> {
    const { a, rec } = this;
    const ctx = a.ctx;
    const manifest = rec.manifest!;
    const mlflowIds = rec.mlflow as Required<NonNullable<AttemptRecord["mlflow"]>>;
    // A record of an agent before the limit (no `partitionRuns`): a run per partition, as it did.
    if ((rec.partitionRuns ?? manifest.nested) && !p.mlflowRunId) {
      p.mlflowRunId = await findOrCreatePartitionRun(ctx.mlflow, mlflowIds.experimentId, mlflowIds.nodeRunId, rec.work!, rec.project!, p.index, manifest.count);
      await a.savePartitions([p]);
    }
    const dir = this.partitionDir(p.index);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    this.attemptEnv ??= { ...ctx.baseEnv, ...rec.env }; // the same for every partition: made once
    const env: NodeJS.ProcessEnv = { ...this.attemptEnv, MLFLOW_RUN_ID: p.mlflowRunId ?? mlflowIds.nodeRunId };
    // Its own metadata sidecar: partitions share the outputs folder, so one file each (metadata.ts).
    const outputsDir = rec.env?.PARALLELS_OUTPUTS_DIR;
    if (outputsDir) env.PARALLELS_METADATA_FILE = join(outputsDir, ...sidecarPath(manifest.nested ? p.index : undefined).split("/"));
    if (manifest.nested) {
      const manifestPath = join(dir, "manifest.json");
      await writeFile(manifestPath, `${JSON.stringify(sliceFiles(manifest, p.index))}\n`);
      // Its items' metadata (from the upstream steps' sidecars), keyed like the manifest's paths.
      const metadataPath = join(dir, "metadata.json");
      await writeFile(metadataPath, `${JSON.stringify(sliceMetadata(manifest, p.index))}\n`);
      env.PARALLELS_PARTITION_INDEX = String(p.index);
      env.PARALLELS_PARTITION_COUNT = String(manifest.count);
      env.PARALLELS_PARTITION_MANIFEST = manifestPath;
      env.PARALLELS_PARTITION_METADATA = metadataPath;
    }
    // Intent first: a crash between spawn and the next save is found again by the pid file.
    p.state = "running";
    p.startedAt = ctx.now();
    if (rec.startedAt === undefined) {
      rec.startedAt = p.startedAt;
      await a.save(); // once: timeouts count from here
    }
    await a.savePartitions([p]);
    let spawned: Spawned;
    try {
      spawned = await spawnDetached(rec.image && ctx.containers ? this.inContainer(p, env) : { command: rec.command!, shell: ctx.shell, cwd: rec.project!.dir, dir, env });
    } catch (e) {
      p.state = "pending";
      throw new AttemptFailure(`${ctx.shell}: ${errMessage(e)}`, { cause: e });
    }
    // Written down by the caller, with the other partitions it started (one append).
    p.pid = spawned.pid;
    if (spawned.pidStart !== undefined) p.pidStart = spawned.pidStart;
    void spawned.exited.then(() => a.wake());
  }

  /**
   * `--containers`: the partition's process is `podman run` of the step's image; the step's
   * variables reach the container by name from podman's own environment (`-e NAME`).
   */
  private inContainer(p: PartitionRecord, stepEnv: NodeJS.ProcessEnv): Parameters<typeof spawnDetached>[0] {
    const { rec } = this;
    const c = this.a.ctx.containers!;
    const podmanEnv = c.env ?? process.env;
    const own = { ...rec.containerEnv, ...Object.fromEntries(Object.entries(stepEnv).filter(([k]) => k in (rec.env ?? {}) || STEP_VARIABLES.has(k))) } as Record<string, string>;
    const uid = process.getuid?.();
    const command = podmanCommand({
      podman: c.podmanBin ?? "podman",
      name: containerName(attemptKey(rec.ref), p.index),
      image: rec.image!,
      command: rec.command!,
      attemptDir: rec.dir,
      readOnlyDirs: [this.a.ctx.projectsRoot].filter((d) => !rec.dir.startsWith(`${d}/`)),
      envNames: Object.keys(own).sort(),
      volumes: rec.containerVolumes ?? [],
      plainHttp: (c.plainHttp ?? []).includes(splitImageRef(rec.image!).registry),
      ...(uid !== undefined && uid !== 0 ? { user: `${uid}:${process.getgid?.() ?? uid}` } : {}),
    });
    return { command, shell: "sh", cwd: rec.dir, dir: this.partitionDir(p.index), env: { ...podmanEnv, ...own } };
  }

  /** Upload a partition's logs and end its nested run (the caller records it). */
  private async settlePartition(p: PartitionRecord): Promise<void> {
    const { a } = this;
    p.logs = await this.uploadLogs(p);
    if (p.mlflowRunId) {
      const status: RunStatus = p.endReason === "cancelled" || p.endReason === "failFast" ? "KILLED" : p.exitCode === 0 ? "FINISHED" : "FAILED";
      await endRun(a.ctx.mlflow, p.mlflowRunId, status, p.endedAt ?? a.ctx.now());
    }
    p.settled = true;
  }

  /**
   * Uploads a partition's logs to its run, or — a partition without a run of its own — to its
   * folder under the node's run, where an empty log is left out (a trivial step of a 10,000-partition
   * node then costs MLflow nothing). Returns the paths uploaded.
   */
  private async uploadLogs(p: PartitionRecord): Promise<string[]> {
    const { rec } = this;
    const dir = this.partitionDir(p.index);
    const nested = rec.manifest?.nested ?? false;
    const ownRun = p.mlflowRunId !== undefined;
    const prefix = partitionLogsDir(p.index, ownRun, nested);
    const uploaded: string[] = [];
    for (const name of ["stdout.log", "stderr.log"]) {
      let data: Uint8Array;
      try {
        data = await readFile(join(dir, name));
      } catch {
        continue; // never started
      }
      if (data.length === 0 && nested && !ownRun) continue;
      await this.a.ctx.mlflow.uploadArtifact(p.mlflowRunId ?? rec.mlflow!.nodeRunId!, `${prefix}/${name}`, data, "text/plain; charset=utf-8");
      uploaded.push(`${prefix}/${name}`);
    }
    return uploaded;
  }
}
