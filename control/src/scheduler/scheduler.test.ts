import { describe, expect, it } from "vitest";
import { wideDag } from "../../../proto/dag/testing";
import { TERMINAL_RUN_STATUSES } from "../../../proto/status";
import { decide, type NodeState, type SchedulerDecision } from "./index";
import { mustValidate, RunSim } from "./testing";

const project = { uri: "." };
/** a → b, a → c, (b, c) → d, plus an independent e. */
const diamond = (extra: Record<string, unknown> = {}, nodeExtra: Record<string, Record<string, unknown>> = {}) =>
  mustValidate({
    name: "diamond",
    ...extra,
    nodes: [
      { id: "a", project, ...nodeExtra.a },
      { id: "b", project, inputs: { x: { node: "a" } }, ...nodeExtra.b },
      { id: "c", project, after: ["a"], ...nodeExtra.c },
      { id: "d", project, inputs: { x: { node: "b" }, y: { node: "c" } }, ...nodeExtra.d },
      { id: "e", project, ...nodeExtra.e },
    ],
  });

const none: Omit<SchedulerDecision, "runStatus"> = { dispatch: [], cancel: [], skip: [], cancelPending: [], abandon: [], accept: [] };
const ids = (d: SchedulerDecision) => d.dispatch.map((x) => x.nodeId);

describe("decide", () => {
  it("dispatches roots first, then dependants once all their upstream nodes succeeded", () => {
    const sim = new RunSim(diamond());
    expect(sim.step()).toEqual({
      ...none,
      dispatch: [
        { nodeId: "a", attempt: 1 },
        { nodeId: "e", attempt: 1 },
      ],
      runStatus: "running",
    });
    expect(sim.peek()).toEqual({ ...none, runStatus: "running" }); // idempotent
    sim.set("a", "succeeded");
    expect(ids(sim.step())).toEqual(["b", "c"]);
    sim.set("b", "succeeded");
    expect(ids(sim.step())).toEqual([]); // d still waits for c
    sim.set("c", "succeeded");
    expect(ids(sim.step())).toEqual(["d"]);
    sim.set("d", "succeeded");
    sim.set("e", "succeeded");
    expect(sim.step()).toEqual({ ...none, runStatus: "succeeded" });
  });

  it("keeps a queued run queued only until the first dispatch, and treats missing states as pending", () => {
    const d = decide({ dag: diamond(), runStatus: "queued", nodes: [], cancelRequested: false });
    expect(d.runStatus).toBe("running");
    expect(ids(d)).toEqual(["a", "e"]);
  });

  it("produces no actions for final runs", () => {
    const nodes: NodeState[] = [{ nodeId: "a", status: "running", attempt: 1 }];
    for (const runStatus of TERMINAL_RUN_STATUSES) {
      expect(decide({ dag: diamond(), runStatus, nodes, cancelRequested: true })).toEqual({ ...none, runStatus });
    }
  });

  it("retries a failed node with attempt + 1 until its retries are used up", () => {
    const sim = new RunSim(diamond({}, { a: { retries: 2 } }));
    sim.step();
    sim.set("a", "failed");
    expect(sim.step().dispatch).toEqual([{ nodeId: "a", attempt: 2 }]);
    sim.set("a", "failed");
    expect(sim.step().dispatch).toEqual([{ nodeId: "a", attempt: 3 }]);
    sim.set("a", "failed");
    const d = sim.step();
    expect(d).toEqual({ ...none, cancel: ["e"], skip: ["b", "c", "d"], runStatus: "failed" });
  });

  it("a final failure (the executor spent the retries within the attempt) is not retried, whatever `retries` allows", () => {
    const sim = new RunSim(diamond({}, { a: { retries: 2 } }));
    sim.step();
    sim.set("a", "failed", undefined, true);
    expect(sim.step()).toEqual({ ...none, cancel: ["e"], skip: ["b", "c", "d"], runStatus: "failed" });
  });

  it("a partition failure retries only the failed partitions, while attempts are left", () => {
    const sim = new RunSim(diamond({}, { a: { retries: 1 } }));
    sim.step();
    sim.failPartitions("a", 10, 2);
    expect(sim.step().dispatch).toEqual([{ nodeId: "a", attempt: 2, onlyFailed: true }]);
    // Every partition failed: the retry runs them all.
    sim.failPartitions("a", 10, 10);
    expect(sim.step()).toMatchObject({ dispatch: [], runStatus: "failed" });
  });

  it("minSuccessRatio: a node whose partitions mostly succeeded, retries spent, is accepted and its dependants go on", () => {
    const sim = new RunSim(diamond({}, { a: { minSuccessRatio: 0.8 } }));
    sim.step();
    sim.failPartitions("a", 10, 2);
    const d = sim.step();
    expect(d.accept).toEqual(["a"]);
    expect(ids(d).sort()).toEqual(["b", "c"]);
    expect(sim.status("a")).toBe("succeeded");
  });

  it("minSuccessRatio not met, or retries left: not accepted", () => {
    const short = new RunSim(diamond({}, { a: { minSuccessRatio: 0.9 } }));
    short.step();
    short.failPartitions("a", 10, 2);
    expect(short.step()).toMatchObject({ accept: [], runStatus: "failed" });
    const retrying = new RunSim(diamond({}, { a: { minSuccessRatio: 0.5, retries: 1 } }));
    retrying.step();
    retrying.failPartitions("a", 10, 2);
    expect(retrying.step()).toMatchObject({ accept: [], dispatch: [{ nodeId: "a", attempt: 2, onlyFailed: true }] });
    // The retry fixed one of the two: 9 of 10 is enough now.
    retrying.failPartitions("a", 10, 1);
    expect(retrying.step().accept).toEqual(["a"]);
  });

  it("fails fast: cancels active nodes once and skips pending ones", () => {
    const sim = new RunSim(diamond());
    sim.step();
    sim.set("a", "succeeded");
    sim.step(); // b, c
    sim.set("b", "failed");
    sim.set("e", "running");
    expect(sim.step()).toEqual({ ...none, cancel: ["c", "e"], skip: ["d"], runStatus: "failed" });
    expect(sim.step()).toEqual({ ...none, runStatus: "failed" }); // cancels are not repeated
  });

  it("with `continue`, skips only the descendants and lets other branches finish", () => {
    const sim = new RunSim(diamond({ failurePolicy: "continue" }));
    sim.step();
    sim.set("a", "succeeded");
    sim.step();
    sim.set("b", "failed");
    expect(sim.step()).toEqual({ ...none, skip: ["d"], runStatus: "running" }); // c and e still run
    sim.set("c", "succeeded");
    expect(sim.step()).toEqual({ ...none, runStatus: "running" });
    sim.set("e", "succeeded");
    expect(sim.step()).toEqual({ ...none, runStatus: "failed" });
  });

  it("with `continue`, skips transitive descendants in one decision", () => {
    const dag = mustValidate({
      name: "chain",
      failurePolicy: "continue",
      nodes: [
        { id: "z", project, after: ["y"] },
        { id: "y", project, after: ["x"] },
        { id: "x", project },
      ],
    });
    const d = decide({
      dag,
      runStatus: "running",
      nodes: [{ nodeId: "x", status: "failed", attempt: 1 }],
      cancelRequested: false,
    });
    expect(d).toEqual({ ...none, skip: ["z", "y"], runStatus: "failed" });
  });

  it("treats a node cancelled without a cancel request as a failure", () => {
    const d = decide({
      dag: diamond(),
      runStatus: "running",
      nodes: [
        { nodeId: "a", status: "cancelled", attempt: 1 },
        { nodeId: "e", status: "running", attempt: 1 },
      ],
      cancelRequested: false,
    });
    expect(d).toEqual({ ...none, cancel: ["e"], skip: ["b", "c", "d"], runStatus: "failed" });
  });

  it("cancels: pending nodes at once, active ones by message, then the run is cancelled", () => {
    const sim = new RunSim(diamond({}, { a: { retries: 3 } }));
    sim.step();
    sim.set("a", "failed"); // would be retried, but the run is being cancelled
    sim.set("e", "building");
    sim.cancelRequested = true;
    expect(sim.step()).toEqual({ ...none, cancel: ["e"], cancelPending: ["b", "c", "d"], runStatus: "cancelling" });
    expect(sim.step()).toEqual({ ...none, runStatus: "cancelling" }); // no repeated cancel
    sim.set("e", "cancelled");
    expect(sim.step()).toEqual({ ...none, runStatus: "cancelled" });
  });

  it("a forced cancel ends the run at once, active nodes included, and sends their cancel again", () => {
    const sim = new RunSim(diamond());
    sim.step();
    sim.set("a", "running");
    sim.cancelRequested = true;
    expect(sim.step()).toEqual({ ...none, cancel: ["a", "e"], cancelPending: ["b", "c", "d"], runStatus: "cancelling" });
    // The cluster is gone: nobody will confirm. Forcing marks the active nodes cancelled now.
    const forced = decide({ dag: diamond(), runStatus: "cancelling", nodes: [...sim.states.values()], cancelRequested: true, forceCancel: true });
    expect(forced).toEqual({ ...none, cancel: ["a", "e"], abandon: ["a", "e"], runStatus: "cancelled" });
    expect(decide({ dag: diamond(), runStatus: "cancelled", nodes: [...sim.states.values()], cancelRequested: true, forceCancel: true })).toEqual({ ...none, runStatus: "cancelled" });
  });

  it("cancels a queued run at once", () => {
    const d = decide({ dag: diamond(), runStatus: "queued", nodes: [], cancelRequested: true });
    expect(d).toEqual({ ...none, cancelPending: ["a", "b", "c", "d", "e"], runStatus: "cancelled" });
  });

  it("lets a run whose nodes all succeeded succeed even if a cancel came too late", () => {
    const nodes = ["a", "b", "c", "d", "e"].map((nodeId) => ({ nodeId, status: "succeeded" as const, attempt: 1 }));
    expect(decide({ dag: diamond(), runStatus: "cancelling", nodes, cancelRequested: true }).runStatus).toBe("succeeded");
  });

  it("ignores states of unknown nodes", () => {
    const d = decide({ dag: diamond(), runStatus: "running", nodes: [{ nodeId: "ghost", status: "failed", attempt: 9 }], cancelRequested: false });
    expect(ids(d)).toEqual(["a", "e"]);
  });

  it("decides on a 2,000-node DAG (its speed is in npm run bench)", () => {
    const dag = mustValidate(wideDag(2000));
    const nodes: NodeState[] = dag.nodes.map((n, i) => ({ nodeId: n.id, status: i < 1000 ? "succeeded" : i < 1500 ? "running" : "pending", attempt: i < 1500 ? 1 : 0 }));
    const d = decide({ dag, runStatus: "running", nodes, cancelRequested: false });
    expect(d.runStatus).toBe("running");
    expect(d.cancel).toEqual([]);
  });
});
