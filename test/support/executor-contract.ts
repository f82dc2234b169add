/**
 * One contract for every executor, written once and run against each (as Hono runs one suite per
 * runtime adapter): success, one partition failing, a retry of only the failed partitions,
 * timeout, cancel, restart and adopt, a redelivered start. Every scenario is a node of the step fixture (test/fixtures/projects/step)
 * partitioned `broadcast` over an input of one MLflow run, with the step's own parameters
 * (`seconds`, `exit_code`, `fail_index`) saying what happens — the local executor runs the step;
 * the Kubernetes executor on the KWOK harness turns the same parameters into the pods' fake
 * lifecycles (a stand-in for a kubelet running containers).
 */
import { describe, expect, it } from "vitest";
import type { DagInput } from "../../proto/dag";
import type { WorkStart } from "../../proto/messages";
import type { MlflowClient, Run } from "../../proto/mlflow";
import { type Recorder, recorder, uid, workFor } from "../../agent/src/executor/testing";
import type { AttemptRef, Executor } from "../../agent/src/executor/types";

export type ContractNode = DagInput["nodes"][number];

export interface Scenario {
  partitions: number;
  seconds: number;
  exitCode?: number;
  failIndex?: number;
  timeoutSeconds?: number;
}

export interface ContractSetup {
  /** Opens the executor over the executor's state (a second call after close: a restart). */
  open(): Promise<Executor>;
  /** The scenario's node: the step fixture (a local path or a git repository, as the executor takes it). */
  node(id: string, s: Scenario, inputRunId: string): ContractNode;
  mlflow: MlflowClient;
  experimentId: string;
  /** How many times something of this attempt was started more than once (processes, Jobs): must stay 0. */
  duplicates(work: WorkStart): Promise<number>;
}

const wait = (r: Recorder, type: "succeeded" | "failed" | "cancelled" | "running", ms = 90_000) => r.waitFor(type, ms);

export function executorContract(name: string, setup: () => ContractSetup) {
  describe(`executor contract: ${name}`, { timeout: 180_000 }, () => {
    let inputRunId = "";
    const scenario = async (c: ContractSetup, s: Scenario, ex: Executor) => {
      if (!inputRunId) {
        const run = await c.mlflow.createRun({ experimentId: c.experimentId, runName: "contract-input" });
        await c.mlflow.uploadArtifact(run.info.runId, "data/item.txt", "one item", "text/plain");
        await c.mlflow.terminateRun(run.info.runId, "FINISHED");
        inputRunId = run.info.runId;
      }
      const work = workFor(
        c.node(
          uid("n")
            .slice(0, 20)
            .replace(/[^a-z0-9-]/g, "-"),
          s,
          inputRunId,
        ),
        { dag: { name: "contract", version: 1 }, experiment: "contract" },
      );
      const r = recorder();
      await ex.start(work, r);
      return { work, r };
    };
    const nodeRun = async (c: ContractSetup, r: Recorder): Promise<Run> => {
      const id = r.events.find((e) => e.mlflowRunId)?.mlflowRunId;
      expect(id, `events: ${JSON.stringify(r.events)}`).toBeTruthy();
      return c.mlflow.getRun(id!);
    };
    const statusSoon = async (c: ContractSetup, runId: string, want: string) => {
      for (let i = 0; i < 100; i++) {
        const s = (await c.mlflow.getRun(runId)).info.status;
        if (s === want) return s;
        await new Promise((res) => setTimeout(res, 100));
      }
      return (await c.mlflow.getRun(runId)).info.status;
    };

    it("success: every partition runs once; counters, node and partition runs in MLflow end FINISHED", async () => {
      const c = setup();
      const ex = await c.open();
      try {
        const { work, r } = await scenario(c, { partitions: 3, seconds: 1 }, ex);
        const end = await wait(r, "succeeded");
        expect(end.counts).toMatchObject({ total: 3, done: 3, failed: 0, running: 0 });
        const run = await nodeRun(c, r);
        expect(await statusSoon(c, run.info.runId, "FINISHED")).toBe("FINISHED");
        const partitions = await c.mlflow.childRuns([run.info.experimentId], run.info.runId);
        expect(partitions.map((p) => p.info.status).sort()).toEqual(["FINISHED", "FINISHED", "FINISHED"]);
        expect(await c.duplicates(work)).toBe(0);
      } finally {
        await ex.close();
      }
    });

    it("one partition failing fails the node, naming the partition and its exit code; its siblings run to their end", async () => {
      const c = setup();
      const ex = await c.open();
      try {
        const { r } = await scenario(c, { partitions: 3, seconds: 1, exitCode: 3, failIndex: 1 }, ex);
        const end = await wait(r, "failed");
        expect(end.message).toMatch(/partition 1\b/);
        expect(end.message).toMatch(/code 3\b/);
        // The others succeeded: the event names the failed one, for a retry of only it (issue 12).
        expect(end.counts).toMatchObject({ total: 3, done: 2, failed: 1 });
        expect(end.failedPartitions).toBe("1");
        expect(end.partitionFailures).toMatchObject([{ index: 1, exitCode: 3 }]);
        expect(await statusSoon(c, (await nodeRun(c, r)).info.runId, "FAILED")).toBe("FAILED");
      } finally {
        await ex.close();
      }
    });

    it("a partition retry runs only the listed partitions, in the node's numbers: counts over the whole node, a failure names the node's partition, the run continues the one before, a restart keeps it", async () => {
      const c = setup();
      let ex = await c.open();
      try {
        // Attempt 1: partition 2 of 3 fails.
        const { work, r } = await scenario(c, { partitions: 3, seconds: 1, exitCode: 3, failIndex: 2 }, ex);
        const first = await wait(r, "failed");
        expect(first.failedPartitions).toBe("2");
        const run1 = (await nodeRun(c, r)).info.runId;
        const retryOf = async (attempt: number, mlflowRunId: string, exitCode: number, seconds = 1, on: Executor = ex) => {
          const node = { ...work.node, parameters: { ...work.node.parameters, exit_code: exitCode, seconds } };
          const w = { ...work, node, attempt, retry: { attempt: attempt - 1, mlflowRunId, partitions: "2", total: 3 } };
          const rr = recorder();
          await on.start(w, rr);
          return rr;
        };
        // Attempt 2 runs partition 2 alone (a Job of one index, on Kubernetes) and it fails again:
        // named as partition 2, with the two earlier successes counted.
        const r2 = await retryOf(2, run1, 3);
        const second = await wait(r2, "failed");
        expect(second.counts).toMatchObject({ total: 3, done: 2, failed: 1 });
        expect(second.failedPartitions).toBe("2");
        expect(second.partitionFailures).toMatchObject([{ index: 2, exitCode: 3 }]);
        expect(second.message).toMatch(/partition 2\b/);
        const run2 = await nodeRun(c, r2);
        expect(run2.data.tags).toMatchObject({ "parallels.outputsFrom": run1, "parallels.partitions.ran": "2" });
        // Attempt 3, of the retry: the agent restarts while it runs; adopted, partition 2
        // succeeds and the node is done (what the retry runs survives the restart).
        const r3 = await retryOf(3, run2.info.runId, 0, 4);
        expect((await wait(r3, "running")).counts).toMatchObject({ total: 3, done: 2 });
        await ex.close();
        ex = await c.open();
        let adopted: Recorder | undefined;
        const recovered = await ex.reconcile((ref: AttemptRef) => {
          const rr = recorder();
          if (ref.nodeRunId === work.nodeRunId && ref.attempt === 3) adopted = rr;
          return rr;
        });
        // (The Kubernetes executor also lists attempts 1 and 2, ended: their Jobs remain until their TTL.)
        expect(recovered.find((a) => a.nodeRunId === work.nodeRunId && a.attempt === 3)).toMatchObject({ state: "running" });
        const third = await wait(adopted!, "succeeded");
        expect(third.counts).toMatchObject({ total: 3, done: 3, failed: 0, running: 0 });
        const run3 = await nodeRun(c, r3);
        expect(run3.data.tags).toMatchObject({ "parallels.outputsFrom": run2.info.runId, "parallels.partitions.ran": "2" });
        expect(await statusSoon(c, run3.info.runId, "FINISHED")).toBe("FINISHED");
        // A nested run for partition 2 only, under each retry's node run.
        for (const [run, status] of [
          [run2.info.runId, "FAILED"],
          [run3.info.runId, "FINISHED"],
        ] as const) {
          const children = await c.mlflow.childRuns([run3.info.experimentId], run);
          expect(children.map((p) => [p.data.tags["parallels.partition.index"], p.info.status])).toEqual([["2", status]]);
        }
      } finally {
        await ex.close();
      }
    });

    it("timeout: a node that runs longer than timeoutSeconds fails, saying so", async () => {
      const c = setup();
      const ex = await c.open();
      try {
        const { r } = await scenario(c, { partitions: 1, seconds: 120, timeoutSeconds: 2 }, ex);
        const end = await wait(r, "failed", 60_000);
        expect(end.message).toMatch(/timed out|timeout/);
      } finally {
        await ex.close();
      }
    });

    it("cancel: the running attempt is stopped, reported cancelled and KILLED in MLflow", async () => {
      const c = setup();
      const ex = await c.open();
      try {
        const { work, r } = await scenario(c, { partitions: 2, seconds: 120 }, ex);
        await wait(r, "running");
        await ex.cancel({ type: "cancel", runId: work.runId, nodeRunId: work.nodeRunId, nodeId: work.nodeId, attempt: work.attempt }, r);
        await wait(r, "cancelled", 60_000);
        expect(await statusSoon(c, (await nodeRun(c, r)).info.runId, "KILLED")).toBe("KILLED");
        expect(ex.running()).toBe(0);
      } finally {
        await ex.close();
      }
    });

    it("restart: a new executor adopts the running attempt and reports its end; nothing starts twice", async () => {
      const c = setup();
      const first = await c.open();
      const { work, r } = await scenario(c, { partitions: 2, seconds: 4 }, first);
      await wait(r, "running");
      await first.close();
      const again = await c.open();
      try {
        const reporters = new Map<string, Recorder>();
        const recovered = await again.reconcile((ref: AttemptRef) => {
          const rr = recorder();
          reporters.set(ref.nodeRunId, rr);
          return rr;
        });
        expect(recovered.find((a) => a.nodeRunId === work.nodeRunId)).toMatchObject({ state: "running", attempt: 1 });
        const end = await wait(reporters.get(work.nodeRunId)!, "succeeded");
        expect(end.counts).toMatchObject({ total: 2, done: 2 });
        expect(await c.duplicates(work)).toBe(0);
      } finally {
        await again.close();
      }
    });

    it("a windowed {experiment} input: one partition per file of the runs that ended in the window; an empty window runs nothing and says so", async () => {
      const c = setup();
      const ex = await c.open();
      try {
        const ingest = (await c.mlflow.getOrCreateExperiment(`contract-ingest-${uid("e").slice(-8)}`)).experimentId;
        const T = Date.now() - 60_000;
        for (const [name, end] of [
          ["before", T - 1],
          ["first", T],
          ["second", T + 1_000],
          ["after", T + 30_000],
        ] as const) {
          const run = await c.mlflow.createRun({ experimentId: ingest, runName: name });
          await c.mlflow.uploadArtifact(run.info.runId, "batch/data.txt", name, "text/plain");
          await c.mlflow.terminateRun(run.info.runId, "FINISHED", { endTime: end });
        }
        const startWith = async (window: { from: number; to: number }) => {
          const base = c.node(
            uid("w")
              .slice(0, 20)
              .replace(/[^a-z0-9-]/g, "-"),
            { partitions: 4, seconds: 0 },
            "",
          );
          const node = { ...base, inputs: { data: { experiment: ingest, path: "batch", window: { since: "lastRun" as const } } }, partition: { by: "object" as const, input: "data" } };
          const work = { ...workFor(node, { dag: { name: "contract", version: 1 }, experiment: "contract" }), windows: { data: { ...window, skipIfEmpty: true } } };
          const r = recorder();
          await ex.start(work, r);
          return r;
        };
        const kept = await wait(await startWith({ from: T, to: T + 30_000 }), "succeeded");
        expect(kept.counts).toMatchObject({ total: 2, done: 2, failed: 0 }); // first, second
        const empty = await wait(await startWith({ from: T + 30_001, to: T + 40_000 }), "succeeded");
        expect(empty.counts).toMatchObject({ total: 0 });
        expect(empty.message).toMatch(/window was empty/);
      } finally {
        await ex.close();
      }
    });

    it("a redelivered start (twice at once) runs the attempt once", async () => {
      const c = setup();
      const ex = await c.open();
      try {
        const { work, r } = await scenario(c, { partitions: 2, seconds: 1 }, ex);
        const r2 = recorder();
        await ex.start(work, r2);
        const ends = [...r.events, ...r2.events].filter((e) => e.type === "succeeded");
        if (ends.length === 0) await Promise.race([wait(r, "succeeded"), wait(r2, "succeeded")]);
        expect(await c.duplicates(work)).toBe(0);
      } finally {
        await ex.close();
      }
    });
  });
}
