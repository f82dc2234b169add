// Ended DAG runs kept on disk until the executor closed them: across a restart, through failures.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createLogger } from "./log";
import { RUN_ENDS_FILE, RunEnds, type RunEnd } from "./run-ends";

const logger = createLogger({ level: "silent" });
const noWait = async () => {};

describe("run ends kept until closed", () => {
  let dir: string;
  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), "run-ends-"))));
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("is on disk as soon as it is added, and a new process (a restart) closes it", async () => {
    new RunEnds(dir, logger).add([{ runId: "r1", status: "succeeded" }]);
    expect(JSON.parse(await readFile(join(dir, RUN_ENDS_FILE), "utf8"))).toEqual({ runEnds: [{ runId: "r1", status: "succeeded" }] });
    // The process died before closing: the next one finds it.
    const again = new RunEnds(dir, logger);
    expect(again.size).toBe(1);
    const closed: RunEnd[] = [];
    const ac = new AbortController();
    const running = again.run(
      async (r) => {
        closed.push(r);
        ac.abort();
      },
      ac.signal,
      noWait,
    );
    await running;
    expect(closed).toEqual([{ runId: "r1", status: "succeeded" }]);
    expect(again.size).toBe(0);
    expect(new RunEnds(dir, logger).size).toBe(0);
  });

  it("keeps a run whose close failed and tries again; a run added while it waits is closed too", async () => {
    const ends = new RunEnds(dir, logger);
    ends.add([{ runId: "r1", status: "failed" }]);
    let failures = 2;
    const closed: string[] = [];
    const ac = new AbortController();
    const running = ends.run(
      async (r) => {
        if (r.runId === "r1" && failures-- > 0) throw new Error("MLflow unreachable");
        closed.push(r.runId);
        if (closed.length === 2) ac.abort();
      },
      ac.signal,
      noWait,
    );
    await new Promise((r) => setTimeout(r, 10));
    ends.add([{ runId: "r2", status: "cancelled" }]);
    await running;
    expect(closed.sort()).toEqual(["r1", "r2"]);
    expect(new RunEnds(dir, logger).size).toBe(0);
  });

  it("refuses a record it cannot read rather than forgetting the runs in it", async () => {
    const { writeFile } = await import("node:fs/promises");
    await writeFile(join(dir, RUN_ENDS_FILE), JSON.stringify({ runEnds: [{ runId: "r1", status: "exploded" }] }));
    expect(() => new RunEnds(dir, logger)).toThrow(/not a run-ends record/);
  });
});
