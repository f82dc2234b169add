import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type AttemptRecord, AttemptStore } from "./state";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function store(): AttemptStore {
  const d = mkdtempSync(join(tmpdir(), "parallels-state-"));
  dirs.push(d);
  return new AttemptStore(d);
}

const record = (n: number): AttemptRecord => ({
  version: 1,
  ref: { runId: "r", nodeRunId: "r-n", nodeId: "n", attempt: 1 },
  phase: "running",
  createdAt: 0,
  updatedAt: 0,
  dir: "/nowhere",
  partitions: Array.from({ length: n }, (_, index) => ({ index, state: "pending" as const })),
});

describe("the attempt store's partition journal", () => {
  it("a load replays the partitions' changes appended since the record was written", async () => {
    const s = store();
    const rec = record(4);
    await s.save(rec);
    rec.partitions![1] = { index: 1, state: "running", pid: 42, startedAt: 5 };
    await s.savePartitions(rec, [rec.partitions![1]!]);
    rec.partitions![1] = { index: 1, state: "exited", pid: 42, startedAt: 5, endedAt: 9, exitCode: 0 };
    rec.partitions![2] = { index: 2, state: "running", startedAt: 6 };
    await s.savePartitions(rec, [rec.partitions![1]!, rec.partitions![2]!]);
    const loaded = await s.load(rec.ref);
    expect(loaded!.partitions).toEqual(rec.partitions);
    expect((await s.list()).map((r) => r.partitions)).toEqual([rec.partitions]);
  });

  it("a full save starts a new journal and deletes the one before; a line cut short by a crash is skipped; remove deletes both", async () => {
    const s = store();
    const rec = record(3);
    await s.save(rec);
    rec.partitions![0] = { index: 0, state: "exited", exitCode: 3 };
    await s.savePartitions(rec, [rec.partitions![0]!]);
    await s.save(rec);
    rec.partitions![2] = { index: 2, state: "running", pid: 7 };
    await s.savePartitions(rec, [rec.partitions![2]!]);
    expect(readdirSync(s.dir).sort()).toEqual(["r-n.1.json", `r-n.1.p${rec.journal}.jsonl`]);
    // A crash in the middle of an append leaves half a line behind.
    const { appendFileSync } = await import("node:fs");
    appendFileSync(join(s.dir, `r-n.1.p${rec.journal}.jsonl`), '{"index":1,"sta');
    expect((await s.load(rec.ref))!.partitions).toEqual(rec.partitions);
    await s.remove(rec.ref);
    expect(readdirSync(s.dir)).toEqual([]);
  });
});
