/**
 * One contract for every executor, written once and run against each (as Hono runs one suite per
 * runtime adapter): success, one partition failing, timeout, cancel, restart and adopt, a
 * redelivered start. Every scenario is a node of the step fixture (test/fixtures/projects/step)
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
