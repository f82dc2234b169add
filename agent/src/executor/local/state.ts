/**
 * @module
 * The durable record of each attempt, one JSON file per attempt under `<stateDir>/attempts/`,
 * written atomically (temp file, fsync, rename). It holds everything needed to pick the attempt
 * up again after the agent is killed: the work message, the MLflow run ids, the rendered
 * command and environment, and per partition its pid, process start stamp and exit code.
 * A cancel of an unknown attempt writes a record too (a tombstone), so a late `start` does nothing.
 *
 * A partition's changes (started, its pid, exited, settled) are not a rewrite of the record: at
 * 10,000 partitions the record is megabytes (the manifest, every partition), and rewriting it a
 * few times per partition made the attempt quadratic. They are appended, one JSON line per
 * partition state, to the record's partition journal (`<key>.p<generation>.jsonl`, fsynced);
 * a load replays it over the record's partitions. Each full save starts a new generation (the
 * record then holds every change so far) and deletes the journal before it.
 */
import { randomUUID } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { mkdir, open, readdir, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import type { PartitionFailure } from "../../../../proto/agent";
import type { WorkStart } from "../../../../proto/messages";
import { ATTEMPT_OUTCOMES, type AttemptOutcome } from "../../../../proto/status";
import { KeyedLock } from "../../keyed-lock";
import type { AttemptRef, AttemptReport } from "../types";
import type { Manifest } from "../shared/manifest";
import type { ProjectInfo } from "../shared/project";

/** An attempt ends in its outcome: the terminal phases are exactly the outcomes. */
export type AttemptPhase = "preparing" | "running" | "finishing" | AttemptOutcome;
export const TERMINAL_PHASES: ReadonlySet<AttemptPhase> = new Set(ATTEMPT_OUTCOMES);

export type PartitionState = "pending" | "running" | "exited";

export interface PartitionRecord {
  index: number;
  state: PartitionState;
  /** Nested MLflow run (partitioned nodes only). */
  mlflowRunId?: string;
  /** The wrapper's pid, which is also its process group id. */
  pid?: number;
  /** Start stamp of that pid (Linux `/proc/<pid>/stat` field 22), to tell a reused pid apart. */
  pidStart?: string;
  startedAt?: number;
  endedAt?: number;
  /** Exit code of the command (128+n when killed by signal n); null when it vanished without one. */
  exitCode?: number | null;
  /** Why it ended when not by itself: "timeout", "cancelled", "failFast", "vanished". */
  endReason?: string;
  /** Logs uploaded and the nested run terminated. */
  settled?: boolean;
  /** Artifact paths of its logs as uploaded when it settled (empty logs of a partition without a run of its own are not). */
  logs?: string[];
}

export type { ProjectInfo };

export interface AttemptRecord {
  version: 1;
  ref: AttemptRef;
  /** Absent for a tombstone written by a cancel that came before any start. */
  work?: WorkStart;
  phase: AttemptPhase;
  createdAt: number;
  updatedAt: number;
  /** When the first process started (timeouts count from here). */
  startedAt?: number;
  /** Folder of this attempt's inputs, outputs and logs. */
  dir: string;
  project?: ProjectInfo;
  /** `--containers`: the image the partitions run in (`<ref>@<digest>`), once it is there. */
  image?: string;
  /** `--containers`: variables of the project's docker_env `environment` (copied ones resolved at preparation). */
  containerEnv?: Record<string, string>;
  /** `--containers`: the project's docker_env `volumes` (`-v`, as `mlflow run` passes them). */
  containerVolumes?: string[];
  command?: string;
  /** The environment the processes get on top of the executor's base environment. */
  env?: Record<string, string>;
  mlflow?: { experimentId: string; parentRunId: string; nodeRunId?: string };
  manifest?: Manifest;
  partitions?: PartitionRecord[];
  cancelRequested?: boolean;
  /** The core gave up on starting it (max deliveries): preparation ends it failed with this message. */
  failRequested?: string;
  /** Set when the attempt is ending (phase `finishing`): how it ends. */
  outcome?: AttemptOutcome;
  /** First failure: what the `failed` event says. */
  message?: string;
  /** The node succeeds without running (its input windows held nothing): what the `running` and `succeeded` events say. */
  skipped?: string;
  /** The failure is final: no further attempt can help (a no-retry exit code). */
  finalFailure?: boolean;
  /**
   * A partition retry (`WorkStart.retry`): `partitions` holds only the ones it runs; the node has
   * `total`, of which `doneBefore` succeeded in earlier attempts (counts are over the whole node).
   */
  retry?: { total: number; doneBefore: number };
  /** On a failure of some partitions while others succeeded: which failed (`"3,7"`), and why (first 50). */
  failedPartitions?: string;
  partitionFailures?: PartitionFailure[];
  /** A cache hit (`shared/cache.ts`): the node run whose result this attempt's is; it ran no step and ends `succeeded`. */
  cachedFrom?: { runId: string; nodeRunId: string; mlflowRunId: string };
  /** Why the cache key may surprise (a git branch's commit at dispatch): said in the node's message. */
  cacheWarning?: string;
  /** Whether the `running` event went out (the first one carries the MLflow run id). */
  runningReported?: boolean;
  /** Whether the terminal event went out. */
  finalReported?: boolean;
  /** Partitions beyond the executor's limit have no nested run (shared/partition-runs.ts): decided once per attempt. */
  partitionRuns?: boolean;
  /** The generation of the partition journal that holds changes made after this record was written (see the module). */
  journal?: number;
}

/**
 * An attempt's partition counters as reported (absolute): all, exited 0, exited otherwise,
 * running. A partition retry counts over the whole node: all its partitions, and the earlier
 * successes as done.
 */
export function partitionCounts(rec: AttemptRecord): NonNullable<AttemptReport["counts"]> {
  const ps = rec.partitions ?? [];
  return {
    total: rec.retry?.total ?? ps.length,
    done: (rec.retry?.doneBefore ?? 0) + ps.filter((p) => p.state === "exited" && p.exitCode === 0).length,
    failed: ps.filter((p) => p.state === "exited" && p.exitCode !== 0).length,
    running: ps.filter((p) => p.state === "running").length,
  };
}

/** What a `failed` event says about partitions: which failed while others succeeded, why, and whether retrying can help. */
export function failureFields(rec: AttemptRecord): Pick<AttemptReport, "failedPartitions" | "partitionFailures" | "final" | "counts"> {
  const out: ReturnType<typeof failureFields> = {};
  if (rec.partitions) out.counts = partitionCounts(rec);
  if (rec.failedPartitions) out.failedPartitions = rec.failedPartitions;
  if (rec.partitionFailures?.length) out.partitionFailures = rec.partitionFailures;
  if (rec.finalFailure) out.final = true;
  return out;
}

/** A file name for an attempt: nodeRunId (encoded) and attempt number. */
export function attemptKey(ref: Pick<AttemptRef, "nodeRunId" | "attempt">): string {
  return `${encodeURIComponent(ref.nodeRunId).replaceAll(".", "%2E")}.${ref.attempt}`;
}

export class AttemptStore {
  readonly dir: string;
  /** Writes and the deletion of one record happen one at a time, in call order. */
  private readonly writes = new KeyedLock();

  constructor(stateDir: string) {
    this.dir = join(stateDir, "attempts");
  }

  private path(key: string): string {
    return join(this.dir, `${key}.json`);
  }

  private journalPath(key: string, generation: number): string {
    return join(this.dir, `${key}.p${generation}.jsonl`);
  }

  async load(ref: Pick<AttemptRef, "nodeRunId" | "attempt">): Promise<AttemptRecord | undefined> {
    return this.read(this.path(attemptKey(ref)));
  }

  /** Every readable record (a corrupt file is skipped, not fatal). */
  async list(): Promise<AttemptRecord[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return [];
    }
    const out: AttemptRecord[] = [];
    for (const n of names.filter((n) => n.endsWith(".json")).sort()) {
      const r = await this.read(join(this.dir, n));
      if (r) out.push(r);
    }
    return out;
  }

  /** Deletes a record and its partition journal (after any write of it still in flight). */
  remove(ref: Pick<AttemptRef, "nodeRunId" | "attempt">): Promise<void> {
    const key = attemptKey(ref);
    return this.writes.run(key, async () => {
      await rm(this.path(key), { force: true });
      const names = await readdir(this.dir).catch(() => [] as string[]);
      for (const n of names) if (n.startsWith(`${key}.p`) && n.endsWith(".jsonl")) await rm(join(this.dir, n), { force: true });
    });
  }

  /** Write atomically; writes of one attempt are serialised in call order. Starts a new partition journal. */
  save(rec: AttemptRecord): Promise<void> {
    const key = attemptKey(rec.ref);
    const before = rec.journal ?? 0;
    rec.journal = before + 1; // partition changes from now on go to the new journal
    const text = `${JSON.stringify(rec)}\n`; // taken now: the record may change before its turn
    return this.writes.run(key, async () => {
      await this.write(this.path(key), text);
      await rm(this.journalPath(key, before), { force: true });
    });
  }

  /**
   * Records the current state of these partitions (one line each, appended and fsynced in one
   * write), in order with the record's other writes. Cheap whatever the number of partitions.
   */
  savePartitions(rec: AttemptRecord, partitions: readonly PartitionRecord[]): Promise<void> {
    if (partitions.length === 0) return Promise.resolve();
    const key = attemptKey(rec.ref);
    const path = this.journalPath(key, rec.journal ?? 0);
    const text = partitions.map((p) => `${JSON.stringify(p)}\n`).join(""); // taken now, as in save
    return this.writes.run(key, async () => {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      const fh = await open(path, "a", 0o600);
      try {
        await fh.writeFile(text);
        await fh.datasync();
      } finally {
        await fh.close();
      }
    });
  }

  private async read(path: string): Promise<AttemptRecord | undefined> {
    let r: AttemptRecord;
    try {
      r = JSON.parse(await readFile(path, "utf8")) as AttemptRecord;
    } catch {
      return undefined;
    }
    if (r?.version !== 1 || !r.ref) return undefined;
    if (r.journal !== undefined && r.partitions) await this.replay(r, this.journalPath(attemptKey(r.ref), r.journal));
    return r;
  }

  /** The partition journal over the record's partitions, in order; a line cut short by a crash is the last one, and skipped. */
  private async replay(rec: AttemptRecord, path: string): Promise<void> {
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch {
      return; // no change since the record was written
    }
    const at = new Map(rec.partitions!.map((p, i) => [p.index, i]));
    for (const line of text.split("\n")) {
      if (!line) continue;
      let p: PartitionRecord;
      try {
        p = JSON.parse(line) as PartitionRecord;
      } catch {
        continue;
      }
      const i = at.get(p.index);
      if (i !== undefined) rec.partitions![i] = p;
    }
  }

  private async write(path: string, text: string): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    // Unique per write: two executors of one process (tests; a restart in-process) may save the same record.
    const tmp = `${path}.${process.pid}.${randomUUID()}.tmp`;
    const fh = await open(tmp, "w", 0o600); // records hold the work message and environment
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await rename(tmp, path);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
  }
}

/**
 * One agent process per state dir: two would both drive the same attempts and start their
 * partitions twice. `<stateDir>/executor.pid` names the owner; a dead owner's file is taken over.
 * Executors in the same process may share it. Returns the release function.
 */
export function lockStateDir(stateDir: string): () => void {
  mkdirSync(stateDir, { recursive: true });
  const path = join(stateDir, "executor.pid");
  let owner: number | undefined;
  try {
    owner = Number.parseInt(readFileSync(path, "utf8").trim(), 10);
  } catch {
    owner = undefined;
  }
  if (owner !== undefined && Number.isFinite(owner) && owner !== process.pid && pidAlive(owner)) {
    throw new Error(`the state dir ${stateDir} is in use by process ${owner} (another agent?); one agent per state dir`);
  }
  writeFileSync(path, `${process.pid}\n`);
  return () => {
    try {
      if (readFileSync(path, "utf8").trim() === String(process.pid)) rmSync(path, { force: true });
    } catch {
      // already gone
    }
  };
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
