import { describe, expect, it } from "vitest";
import type { NodeStatus } from "../../../proto/status";
import { planContinued, planResume, type PartialFailure, type ResumeInput } from "./resume";
import { mustValidate } from "./testing";

const project = { uri: "https://github.com/example/project.git" };
const dag = mustValidate({
  name: "chain",
  params: { lr: 0.1, tag: "v1" },
  nodes: [
    { id: "prep", project },
    { id: "train", project, inputs: { data: { node: "prep" } }, parameters: { lr: "${params.lr}" } },
    { id: "eval", project, inputs: { model: { node: "train" } }, env: { TAG: "${params.tag}" } },
    { id: "side", project, after: ["prep"] },
  ],
});
const from = (id: string) => ({ runId: "old", nodeRunId: `old-${id}`, mlflowRunId: `m-${id}` });
const old = (statuses: Record<string, NodeStatus>) => Object.entries(statuses).map(([nodeId, status]) => ({ nodeId, status, from: status === "succeeded" ? from(nodeId) : null }));
const params = { lr: 0.1, tag: "v1" };

describe("planResume", () => {
  it("reuses what succeeded; the failed node and what follows it run", () => {
    const plan = planResume({ dag, oldParams: params, newParams: params, oldNodes: old({ prep: "succeeded", train: "succeeded", eval: "failed", side: "skipped" }) });
    expect([...plan.keys()].sort()).toEqual(["prep", "train"]);
    expect(plan.get("train")).toEqual(from("train"));
  });

  it("a changed parameter re-runs its node and everything downstream", () => {
    const plan = planResume({ dag, oldParams: params, newParams: { ...params, lr: 0.2 }, oldNodes: old({ prep: "succeeded", train: "succeeded", eval: "succeeded", side: "failed" }) });
    expect([...plan.keys()].sort()).toEqual(["prep"]);
  });

  it("a changed env value counts as a changed parameter; an unused param changes nothing", () => {
    const all = old({ prep: "succeeded", train: "succeeded", eval: "succeeded", side: "cancelled" });
    expect([...planResume({ dag, oldParams: params, newParams: { ...params, tag: "v2" }, oldNodes: all }).keys()].sort()).toEqual(["prep", "train"]);
    // `1` and `"1"` substitute to different values: a type change counts.
    expect([...planResume({ dag, oldParams: params, newParams: { ...params, lr: "0.1" }, oldNodes: all }).keys()].sort()).toEqual(["prep"]);
  });

  it("a reused node of the old run is reused again, pointing at the run that made it", () => {
    const nodes = [
      { nodeId: "prep", status: "reused" as const, from: { runId: "first", nodeRunId: "first-prep", mlflowRunId: "m0" } },
      { nodeId: "train", status: "failed" as const, from: null },
    ];
    const plan = planResume({ dag, oldParams: params, newParams: params, oldNodes: nodes });
    expect(plan.get("prep")).toEqual({ runId: "first", nodeRunId: "first-prep", mlflowRunId: "m0" });
    expect(plan.has("train")).toBe(false);
  });
});

describe("planContinued", () => {
  // `train` is partitioned in spirit: what matters is the recorded partial failure of its node run.
  const partial = (partitions = "3,7", total = 10): PartialFailure => ({ runId: "old", nodeRunId: "old-train", attempt: 2, mlflowRunId: "m-train-2", partitions, total });
  const input = (over: Partial<ResumeInput> & { trainPartial?: PartialFailure | undefined; prep?: NodeStatus } = {}): ResumeInput => ({
    dag,
    oldParams: params,
    newParams: over.newParams ?? params,
    oldNodes: [
      { nodeId: "prep", status: over.prep ?? "succeeded", from: over.prep && over.prep !== "succeeded" ? null : from("prep") },
      { nodeId: "train", status: "failed", from: null, partial: "trainPartial" in over ? over.trainPartial : partial() },
      { nodeId: "eval", status: "skipped", from: null },
      { nodeId: "side", status: "succeeded", from: from("side") },
    ],
  });
  const continued = (i: ResumeInput) => planContinued(i, planResume(i));

  it("a node that failed in some partitions, its upstream reused and its parameters unchanged, continues from its old node run", () => {
    const plan = continued(input());
    expect([...plan.keys()]).toEqual(["train"]);
    expect(plan.get("train")).toEqual(partial());
  });

  it("runs every partition when an upstream node runs again (its inputs may differ) or its own parameters changed", () => {
    expect(continued(input({ prep: "failed" })).size).toBe(0);
    expect(continued(input({ newParams: { ...params, lr: 0.2 } })).size).toBe(0);
    // A param only a downstream node uses changes nothing here.
    expect([...continued(input({ newParams: { ...params, tag: "v2" } })).keys()]).toEqual(["train"]);
  });

  it("runs every partition when no partition succeeded, none is named, or the old MLflow run is unknown", () => {
    expect(continued(input({ trainPartial: partial("0-9", 10) })).size).toBe(0);
    expect(continued(input({ trainPartial: partial("", 10) })).size).toBe(0);
    // Indexes past the total do not count as failed partitions.
    expect(continued(input({ trainPartial: partial("10-12", 10) })).size).toBe(0);
    expect(continued(input({ trainPartial: { ...partial(), mlflowRunId: "" } })).size).toBe(0);
    expect(continued(input({ trainPartial: undefined })).size).toBe(0);
  });

  it("only a failed node continues: a cancelled one with a stale partial record runs whole", () => {
    const i = input();
    const nodes = i.oldNodes.map((n) => (n.nodeId === "train" ? { ...n, status: "cancelled" as const } : n));
    expect(continued({ ...i, oldNodes: nodes }).size).toBe(0);
  });
});
