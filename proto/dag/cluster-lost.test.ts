import { describe, expect, it } from "vitest";
import { clusterLostPolicy } from "./cluster-lost";
import { validateDag } from "./validate";

const project = { uri: "examples/noop" };
const problemsOf = (doc: unknown) => {
  const r = validateDag(doc);
  return r.ok ? [] : r.problems.map((p) => `${p.path}: ${p.message}`);
};

describe("onClusterLost", () => {
  it("accepts each policy with a grace, and either field alone", () => {
    for (const onClusterLost of [{ policy: "wait" }, { policy: "retryElsewhere", grace: "5m" }, { policy: "fail", grace: "1h" }, { grace: "30s" }, {}]) {
      expect(problemsOf({ name: "d", onClusterLost, nodes: [{ id: "a", project }] })).toEqual([]);
    }
  });

  it("refuses bad forms, naming the field", () => {
    expect(problemsOf({ name: "d", onClusterLost: { policy: "retry" }, nodes: [{ id: "a", project }] })).toEqual(['onClusterLost.policy: expected "wait", "retryElsewhere" or "fail"']);
    expect(problemsOf({ name: "d", onClusterLost: { grace: "10" }, nodes: [{ id: "a", project }] })).toEqual(['onClusterLost.grace: expected a positive duration such as "30s", "15m", "2h" or "1d"']);
    expect(problemsOf({ name: "d", onClusterLost: { policy: "fail", graec: "1m" }, nodes: [{ id: "a", project }] })).toEqual(['onClusterLost.graec: unknown field "graec" (did you mean "grace"?)']);
    expect(problemsOf({ name: "d", onClusterLost: "fail", nodes: [{ id: "a", project }] })).toEqual([expect.stringMatching(/^onClusterLost: expected an object/)]);
  });

  it("defaults to failing after 10 minutes, and fills in a missing field", () => {
    expect(clusterLostPolicy({})).toEqual({ policy: "fail", grace: "10m", graceMs: 600_000 });
    expect(clusterLostPolicy({ onClusterLost: { policy: "retryElsewhere" } })).toEqual({ policy: "retryElsewhere", grace: "10m", graceMs: 600_000 });
    expect(clusterLostPolicy({ onClusterLost: { grace: "2h" } })).toEqual({ policy: "fail", grace: "2h", graceMs: 7_200_000 });
  });
});
