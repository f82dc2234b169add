import { describe, expect, it } from "vitest";
import type { NodeStatus } from "../../../proto/status";
import { planResume } from "./resume";
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
