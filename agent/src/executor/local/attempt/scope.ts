/**
 * @module
 * What preparing, supervising and finishing an attempt share: its record, how a change of it is
 * saved and how the attempt reports. The `Attempt` class (index.ts) provides it.
 */
import type { AttemptReport } from "../../types";
import type { ExecutorContext } from "../options";
import type { AttemptRecord, PartitionRecord } from "../state";

export interface AttemptScope {
  readonly ctx: ExecutorContext;
  /** The attempt's durable record: every change is saved before it is acted on where a crash could lose it. */
  readonly rec: AttemptRecord;
  /** Writes the record (atomically, in call order). */
  save(): Promise<void>;
  /** Records these partitions' changes (one appended line each, in order with {@link save}): what a partition's step saves. */
  savePartitions(partitions: readonly PartitionRecord[]): Promise<void>;
  /** Reports an event of the attempt; never throws. Until `running` is out, events carry the MLflow run ids. */
  report(event: AttemptReport): void;
  /** The partition counters last reported (as JSON), so progress goes out only when they change. */
  readonly reportedCounts: string;
  /** Makes the attempt's loop take its next step now (a process exited, a slot was released). */
  wake(): void;
  /** The attempt's fields for a log line, with `extra`. */
  logCtx(extra?: object): object;
}
