/**
 * The event reporter: executors report what happens to an attempt; this assigns `seq` and `at`,
 * keeps the events in a journal file (so a crash between report and send loses nothing), and
 * sends them in order, in batches, to POST /v1/agent/events — retrying with back-off, so an
 * outage of the control plane delays reports but drops none.
 *
 * `seq` must grow per (nodeRunId, attempt) across agent restarts: it is
 * `max(last + 1, now_ms · 1000)` — the clock carries it over a restart, `last` within a millisecond.
 *
 * Journal (`events.jsonl`): one line per event `{"j":<id>,"e":{…}}`, and `{"done":[ids]}` lines for
 * events the control plane took (or refused for good). Rewritten only when it has grown well past
 * what is still queued, so a long outage costs O(1) per event.
 */
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { AgentEvent, MAX_EVENTS_PER_BATCH, type EventBatchResult } from "../../proto/agent";
import { isAttemptOutcome } from "../../proto/status";
import { Backoff, realSleep, type Clock, type Sleep } from "./backoff";
import { ControlPlaneError, type ControlPlaneClient } from "./control";
import type { AttemptRef, AttemptReport, AttemptReporter } from "./executor/types";
import { errInfo, type Logger } from "./log";
import type { Metrics } from "./metrics";

export const JOURNAL_FILE = "events.jsonl";
const MAX_MESSAGE = 4000;
/** Largest request body the agent sends (the control plane refuses bodies over 1 MiB). */
export const MAX_BATCH_BYTES = 512 * 1024;

export interface EventReporterOptions {
  stateDir: string;
  client: ControlPlaneClient;
  credential: string;
  logger: Logger;
  metrics?: Metrics;
  clock?: Clock;
  sleep?: Sleep;
  backoff?: Backoff;
  /** Send when the oldest queued event is this old (default 250 ms)… */
  flushIntervalMs?: number;
  /** …or when this many are queued (default 100). */
  flushAtCount?: number;
  /** Largest batch (default and maximum 500). */
  maxBatch?: number;
  /** Largest JSON body of one batch in bytes (default {@link MAX_BATCH_BYTES}). */
  maxBatchBytes?: number;
  /** Called after each accepted report (e.g. to notice finished attempts). */
  onReport?: (ref: AttemptRef, event: AgentEvent) => void;
  /**
   * Called with the DAG runs the control plane says a sent batch ended (never empty), before the
   * batch leaves the journal: it must record them durably, or throw (the batch is then kept).
   */
  onEndedRuns?: (runs: EventBatchResult["endedRuns"]) => void;
}

interface Entry {
  j: number;
  event: AgentEvent;
  queuedAt: number;
  /** Bytes of the event's JSON. */
  size: number;
}

const key = (nodeRunId: string, attempt: number) => `${nodeRunId}\u0000${attempt}`;

export class EventReporter {
  private readonly queue: Entry[] = [];
  /** An attempt ended: send without waiting for the batching interval. */
  private urgent = false;
  private readonly lastSeq = new Map<string, number>();
  private readonly path: string;
  private readonly clock: Clock;
  private readonly sleep: Sleep;
  private readonly backoff: Backoff;
  private readonly interval: number;
  private readonly atCount: number;
  private readonly maxBatch: number;
  private fd: number;
  private nextJ = 1;
  private journalLines = 0;
  private wake: (() => void) | null = null;
  private sending: Promise<boolean> | null = null;

  private constructor(private readonly o: EventReporterOptions) {
    this.path = join(o.stateDir, JOURNAL_FILE);
    this.clock = o.clock ?? Date.now;
    this.sleep = o.sleep ?? realSleep;
    this.backoff = o.backoff ?? new Backoff({ initialMs: 250, maxMs: 30_000 });
    this.interval = o.flushIntervalMs ?? 250;
    this.atCount = o.flushAtCount ?? 100;
    this.maxBatch = Math.min(o.maxBatch ?? MAX_EVENTS_PER_BATCH, MAX_EVENTS_PER_BATCH);
    mkdirSync(o.stateDir, { recursive: true, mode: 0o700 });
    this.load();
    this.fd = this.rewrite();
  }

  /** Opens the journal in `stateDir`; events left by an earlier process are queued first. */
  static open(o: EventReporterOptions): EventReporter {
    return new EventReporter(o);
  }

  /** Events waiting to be sent. */
  get depth(): number {
    return this.queue.length;
  }

  /** The reporter an executor uses for one attempt. */
  reporterFor(ref: AttemptRef): AttemptReporter {
    return { report: (event) => this.report(ref, event) };
  }

  /** Queues one event of an attempt. Never throws: an event that cannot be valid is logged and dropped. */
  report(ref: AttemptRef, report: AttemptReport): void {
    try {
      const now = this.clock();
      const k = key(ref.nodeRunId, ref.attempt);
      const seq = Math.max((this.lastSeq.get(k) ?? 0) + 1, now * 1000);
      const candidate = { ...report, ...(report.message !== undefined ? { message: String(report.message).slice(0, MAX_MESSAGE) } : {}), nodeRunId: ref.nodeRunId, attempt: ref.attempt, seq, at: now };
      const parsed = AgentEvent.safeParse(candidate);
      if (!parsed.success) {
        this.o.metrics?.eventsDropped.inc({ reason: "invalid" });
        this.o.logger.error(
          { nodeRunId: ref.nodeRunId, attempt: ref.attempt, type: report.type, problem: parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`) },
          "dropping an invalid event from the executor",
        );
        return;
      }
      this.lastSeq.set(k, seq);
      const entry: Entry = { j: this.nextJ++, event: parsed.data, queuedAt: now, size: jsonBytes(parsed.data) };
      this.queue.push(entry);
      this.append(JSON.stringify({ j: entry.j, e: entry.event }));
      this.o.logger.debug({ nodeRunId: ref.nodeRunId, attempt: ref.attempt, type: report.type, seq }, "event queued");
      // The first event starts the batching timer; a full batch goes at once, and so does an
      // attempt's end: it is what lets the control plane dispatch the dependants.
      if (isAttemptOutcome(report.type)) this.urgent = true;
      if (this.queue.length === 1 || this.queue.length >= this.atCount || this.urgent) this.wake?.();
      this.o.onReport?.(ref, parsed.data);
    } catch (err) {
      this.o.logger.error({ err: errInfo(err) }, "could not queue an event");
    }
  }

  /** The flushing loop: runs until `signal` aborts (then call {@link flush} to send what is left). */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const first = this.queue[0];
      if (!first) {
        await this.waitForWake(null, signal);
        continue;
      }
      const age = this.clock() - first.queuedAt;
      if (!this.urgent && this.queue.length < this.atCount && age < this.interval) {
        await this.waitForWake(this.interval - age, signal);
        continue;
      }
      if (!(await this.sendOnce())) await this.sleep(this.backoff.next(), signal);
    }
  }

  /** Sends until the queue is empty or `deadlineMs` passed. Returns how many events are left (kept in the journal). */
  async flush(deadlineMs = 5000): Promise<number> {
    const end = this.clock() + deadlineMs;
    await this.sending;
    while (this.queue.length > 0 && this.clock() < end) {
      if (await this.sendOnce()) continue;
      const wait = Math.min(this.backoff.next(), end - this.clock());
      if (wait > 0) await this.sleep(wait);
    }
    return this.queue.length;
  }

  close(): void {
    try {
      closeSync(this.fd);
    } catch {
      /* already closed */
    }
  }

  private waitForWake(ms: number | null, signal: AbortSignal): Promise<void> {
    const timer = new AbortController();
    const onAbort = () => timer.abort();
    signal.addEventListener("abort", onAbort, { once: true });
    const woken = new Promise<void>((resolve) => (this.wake = resolve));
    const waits: Promise<void>[] = [woken, new Promise((r) => timer.signal.addEventListener("abort", () => r(), { once: true }))];
    if (ms !== null) waits.push(this.sleep(ms, timer.signal));
    return Promise.race(waits).finally(() => {
      this.wake = null;
      timer.abort();
      signal.removeEventListener("abort", onAbort);
    });
  }

  /** One batch. True when it left the queue (sent, or refused for good); false: retry later. */
  private sendOnce(): Promise<boolean> {
    this.sending ??= this.send().finally(() => (this.sending = null));
    return this.sending;
  }

  /** The next batch: in order, at most `maxBatch` events and `maxBatchBytes` of JSON (at least one event). */
  private nextBatch(): Entry[] {
    const limit = this.o.maxBatchBytes ?? MAX_BATCH_BYTES;
    let bytes = 16; // {"events":[…]}
    const batch: Entry[] = [];
    for (const e of this.queue) {
      if (batch.length >= this.maxBatch || (batch.length > 0 && bytes + e.size + 1 > limit)) break;
      batch.push(e);
      bytes += e.size + 1;
    }
    return batch;
  }

  private async send(): Promise<boolean> {
    const batch = this.nextBatch();
    if (batch.length === 0) return true;
    return (await this.sendBatch(batch)) === "done";
  }

  /**
   * Posts `batch`. A refusal that names no event (a 400 without details, a 413) may come from
   * one bad event: the batch is split and the halves sent in order, down to single events, so
   * only the events refused alone are dropped. "retry": nothing more can be sent now.
   */
  private async sendBatch(batch: Entry[]): Promise<"done" | "retry"> {
    try {
      const result = await this.o.client.events(this.o.credential, { events: batch.map((b) => b.event) });
      // Before the batch leaves the journal: the answer is the only news that these runs ended.
      // If it cannot be kept, the batch stays and is sent again (the control plane names the runs again).
      if (result.endedRuns.length > 0 && !this.keepEndedRuns(result.endedRuns)) return "retry";
      this.remove(batch);
      this.urgent = this.queue.some((e) => isAttemptOutcome(e.event.type));
      this.backoff.reset();
      this.o.metrics?.eventsSent.inc(batch.length);
      this.o.logger.debug({ sent: batch.length, applied: result.applied, ignored: result.ignored, endedRuns: result.endedRuns, queued: this.queue.length }, "events sent");
      return "done";
    } catch (err) {
      const status = err instanceof ControlPlaneError ? err.status : null;
      if (status === 403 || status === 400 || status === 413) {
        // Foreign work (403) or events the control plane cannot read (400, 413): sending them
        // again can never succeed. Drop the ones it names and send the rest; when it names none,
        // find the bad ones by splitting the batch.
        const named = new Set((err as ControlPlaneError).details.flatMap((d) => /^events\[(\d+)\]/.exec(d.path)?.[1] ?? []).map(Number));
        if (named.size === 0 && batch.length > 1) {
          this.o.logger.warn({ err: errInfo(err), events: batch.length }, "the control plane refused a batch without saying which events; sending it in halves");
          const half = Math.ceil(batch.length / 2);
          for (const part of [batch.slice(0, half), batch.slice(half)]) if ((await this.sendBatch(part)) === "retry") return "retry";
          return "done";
        }
        const dropped = named.size > 0 ? batch.filter((_, i) => named.has(i)) : batch;
        const reason = status === 403 ? "foreign" : "rejected";
        this.remove(dropped);
        this.urgent = this.queue.some((e) => isAttemptOutcome(e.event.type));
        this.o.metrics?.eventBatchesFailed.inc({ reason });
        this.o.metrics?.eventsDropped.inc({ reason }, dropped.length);
        this.o.logger.error(
          { err: errInfo(err), dropped: dropped.map((d) => ({ nodeRunId: d.event.nodeRunId, attempt: d.event.attempt, type: d.event.type })), kept: batch.length - dropped.length },
          status === 403 ? "the control plane says these events report work this cluster was not given; dropped" : "the control plane refused these events as invalid; dropped",
        );
        return "done";
      }
      this.o.metrics?.eventBatchesFailed.inc({ reason: status === null ? "network" : String(status) });
      const level = status === 401 ? "error" : "warn";
      this.o.logger[level](
        { err: errInfo(err), queued: this.queue.length },
        status === 401 ? "the control plane refused the agent credential; events kept, retrying" : "sending events failed; retrying with back-off",
      );
      return "retry";
    }
  }

  private keepEndedRuns(runs: EventBatchResult["endedRuns"]): boolean {
    try {
      this.o.onEndedRuns?.(runs);
      return true;
    } catch (err) {
      this.o.logger.error({ err: errInfo(err), runs }, "could not record the DAG runs the control plane says ended; the events are sent again");
      return false;
    }
  }

  private remove(entries: Entry[]): void {
    if (entries.length === 0) return;
    const gone = new Set(entries);
    const kept = this.queue.filter((e) => !gone.has(e));
    this.queue.splice(0, this.queue.length, ...kept);
    if (this.queue.length === 0 || (this.journalLines > 10_000 && this.journalLines > 4 * this.queue.length)) {
      closeSync(this.fd);
      this.fd = this.rewrite();
    } else {
      this.append(JSON.stringify({ done: entries.map((e) => e.j) }));
    }
    this.pruneSeqs();
  }

  /** `lastSeq` only matters within a millisecond (the clock term wins after): keep it small. */
  private pruneSeqs(): void {
    if (this.lastSeq.size < 1000) return;
    const old = (this.clock() - 60_000) * 1000;
    for (const [k, seq] of this.lastSeq) if (seq < old) this.lastSeq.delete(k);
  }

  private append(line: string): void {
    try {
      writeSync(this.fd, `${line}\n`);
      this.journalLines++;
    } catch (err) {
      this.o.logger.error({ err: errInfo(err), path: this.path }, "could not write the event journal; the event is kept in memory only");
    }
  }

  /** Writes the journal afresh with what is queued (atomic rename) and returns an append fd. */
  private rewrite(): number {
    const tmp = `${this.path}.tmp`;
    writeFileSync(tmp, this.queue.map((e) => `${JSON.stringify({ j: e.j, e: e.event })}\n`).join(""), { mode: 0o600 });
    renameSync(tmp, this.path);
    this.journalLines = this.queue.length;
    return openSync(this.path, "a", 0o600);
  }

  private load(): void {
    let text: string;
    try {
      text = readFileSync(this.path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw err;
    }
    const events = new Map<number, AgentEvent>();
    let bad = 0;
    for (const line of text.split("\n")) {
      if (!line.trim()) continue;
      try {
        const rec = JSON.parse(line) as { j?: number; e?: unknown; done?: number[] };
        if (Array.isArray(rec.done)) for (const j of rec.done) events.delete(j);
        else if (typeof rec.j === "number") {
          const parsed = AgentEvent.safeParse(rec.e);
          if (parsed.success) events.set(rec.j, parsed.data);
          else bad++;
        }
        this.nextJ = Math.max(this.nextJ, (rec.j ?? 0) + 1);
      } catch {
        bad++; // a line cut short by a crash
      }
    }
    const now = this.clock();
    for (const [j, event] of [...events].sort((a, b) => a[0] - b[0])) {
      this.queue.push({ j, event, queuedAt: now, size: jsonBytes(event) });
      const k = key(event.nodeRunId, event.attempt);
      this.lastSeq.set(k, Math.max(this.lastSeq.get(k) ?? 0, event.seq));
    }
    if (this.queue.length > 0 || bad > 0) this.o.logger.info({ queued: this.queue.length, unreadableLines: bad }, "events from the previous run are queued for sending");
  }
}

function jsonBytes(event: AgentEvent): number {
  return Buffer.byteLength(JSON.stringify(event));
}
