import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { ReusedFrom } from "../../../proto/api";
import { upstreamOf, type Dag } from "../../../proto/dag";
import { acyclicDagArb } from "../../../proto/dag/testing";
import { isActiveNode, isDoneNode, NODE_STATUSES, type NodeStatus } from "../../../proto/status";
import { paramsChanged, planContinued, planResume, type PartialFailure } from "./resume";
import { parseIndexes } from "../../../proto/indexes";
import { mustValidate, RunSim } from "./testing";

const PARAMS = ["a", "b", "c"] as const;

/** Every ancestor of each node (transitively). */
function ancestors(dag: Dag): Map<string, Set<string>> {
  const up = upstreamOf(dag);
  const memo = new Map<string, Set<string>>();
  const of = (id: string): Set<string> => {
    const hit = memo.get(id);
    if (hit) return hit;
    const out = new Set<string>();
    for (const u of up.get(id) ?? []) {
      out.add(u);
      for (const a of of(u)) out.add(a);
    }
    memo.set(id, out);
    return out;
  };
  for (const n of dag.nodes) of(n.id);
  return memo;
}

/**
 * A generated DAG whose nodes take some of the params `a`, `b`, `c` (in `parameters` or `env`),
 * the old run's outcome of each node, and the resume's overrides.
 */
const caseArb = acyclicDagArb({ maxNodes: 60 }).chain((g) =>
  fc.record({
    g: fc.constant(g),
    uses: fc.array(fc.subarray([...PARAMS]), { minLength: g.ids.length, maxLength: g.ids.length }),
    inEnv: fc.array(fc.boolean(), { minLength: g.ids.length, maxLength: g.ids.length }),
    // Mostly succeeded, so that long reused chains occur.
    old: fc.array(fc.oneof({ weight: 6, arbitrary: fc.constant<NodeStatus>("succeeded") }, { weight: 3, arbitrary: fc.constantFrom(...NODE_STATUSES) }), {
      minLength: g.ids.length,
      maxLength: g.ids.length,
    }),
    knownResult: fc.array(
      fc.nat({ max: 15 }).map((x) => x !== 0),
      { minLength: g.ids.length, maxLength: g.ids.length },
    ),
    // The old node run's partial failure record (used when it `failed`): which partitions, of how many.
    partial: fc.array(
      fc.option(fc.record({ total: fc.integer({ min: 1, max: 6 }), failed: fc.subarray([0, 1, 2, 3, 4, 5, 6]), knownRun: fc.nat({ max: 7 }).map((x) => x !== 0) }), { nil: undefined }),
      { minLength: g.ids.length, maxLength: g.ids.length },
    ),
    overrides: fc.dictionary(fc.constantFrom(...PARAMS), fc.oneof(fc.constantFrom("x", "y"), fc.integer({ min: 0, max: 2 }), fc.boolean()), { maxKeys: 3 }),
  }),
);

type Case = typeof caseArb extends fc.Arbitrary<infer T> ? T : never;

function partialOf(nodeId: string, p: Case["partial"][number]): PartialFailure | undefined {
  if (!p) return undefined;
  const partitions = [...p.failed].sort((a, b) => a - b).join(",");
  return { runId: "old", nodeRunId: `old-${nodeId}`, attempt: 1, mlflowRunId: p.knownRun ? `mlflow-${nodeId}-1` : "", partitions, total: p.total };
}

function build(c: Case) {
  const { g, uses, inEnv, old, knownResult, overrides, partial } = c;
  const byId = new Map(g.ids.map((id, i) => [id, i]));
  const nodes = g.doc.nodes.map((n) => {
    const i = byId.get((n as { id: string }).id)!;
    const refs = Object.fromEntries(uses[i]!.map((p) => [`p_${p}`, `\${params.${p}}`]));
    if (uses[i]!.length === 0) return n;
    return inEnv[i] ? { ...n, env: refs } : { ...n, parameters: refs };
  });
  const dag = mustValidate({ ...g.doc, nodes, params: { a: "x", b: 1, c: true } });
  const oldParams = { a: "x", b: 1, c: true } as Record<string, string | number | boolean>;
  const newParams = { ...oldParams, ...overrides };
  const oldNodes = g.ids.map((nodeId, i) => ({
    nodeId,
    status: old[i]!,
    from: knownResult[i] ? ({ runId: "old", nodeRunId: `old-${nodeId}`, mlflowRunId: `mlflow-${nodeId}` } satisfies ReusedFrom) : null,
    partial: partialOf(nodeId, partial[i]),
  }));
  return { dag, oldParams, newParams, oldNodes };
}

describe("planResume properties", () => {
  it("a reused node never has a non-reused ancestor, was done in the old run with a known result, and keeps its parameters", () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const input = build(c);
        const plan = planResume(input);
        const anc = ancestors(input.dag);
        const old = new Map(input.oldNodes.map((n) => [n.nodeId, n]));
        for (const node of input.dag.nodes) {
          if (!plan.has(node.id)) continue;
          for (const a of anc.get(node.id)!) expect(plan.has(a), `${node.id} reused, its ancestor ${a} not`).toBe(true);
          expect(isDoneNode(old.get(node.id)!.status)).toBe(true);
          expect(plan.get(node.id)).toEqual(old.get(node.id)!.from);
          expect(paramsChanged(node, input.oldParams, input.newParams)).toBe(false);
        }
      }),
      { numRuns: 200 },
    );
  });

  it("a node whose resolved parameters changed is never reused, nor is anything downstream of it", () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const input = build(c);
        const plan = planResume(input);
        const anc = ancestors(input.dag);
        const changed = new Set(input.dag.nodes.filter((n) => paramsChanged(n, input.oldParams, input.newParams)).map((n) => n.id));
        for (const node of input.dag.nodes) {
          if (changed.has(node.id)) expect(plan.has(node.id)).toBe(false);
          if ([...anc.get(node.id)!].some((a) => changed.has(a))) expect(plan.has(node.id)).toBe(false);
        }
      }),
      { numRuns: 200 },
    );
  });

  it("reuses as much as it may: a node left out has a reason (not done, result unknown, parameters changed, or an upstream node runs)", () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const input = build(c);
        const plan = planResume(input);
        const up = upstreamOf(input.dag);
        const old = new Map(input.oldNodes.map((n) => [n.nodeId, n]));
        for (const node of input.dag.nodes) {
          if (plan.has(node.id)) continue;
          const o = old.get(node.id)!;
          const reason = !isDoneNode(o.status) || o.from === null || paramsChanged(node, input.oldParams, input.newParams) || (up.get(node.id) ?? []).some((u) => !plan.has(u));
          expect(reason, `${node.id} could have been reused`).toBe(true);
        }
      }),
      { numRuns: 200 },
    );
  });

  it("the resumed run dispatches only the nodes not reused, each once, after their upstream nodes are done, and succeeds", () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const input = build(c);
        const plan = planResume(input);
        const sim = new RunSim(input.dag);
        for (const id of plan.keys()) sim.set(id, "reused");
        const up = upstreamOf(input.dag);
        const dispatched = new Map<string, number>();
        for (let round = 0; round < input.dag.nodes.length * 4 + 4 && sim.runStatus !== "succeeded"; round++) {
          const before = new Map([...sim.states].map(([id, s]) => [id, s.status]));
          const d = sim.step();
          for (const { nodeId } of d.dispatch) {
            for (const u of up.get(nodeId)!) expect(isDoneNode(before.get(u)!)).toBe(true);
            dispatched.set(nodeId, (dispatched.get(nodeId) ?? 0) + 1);
          }
          for (const id of sim.active()) if (isActiveNode(sim.status(id))) sim.set(id, "succeeded");
        }
        expect(sim.runStatus).toBe("succeeded");
        for (const node of input.dag.nodes) expect(dispatched.get(node.id) ?? 0).toBe(plan.has(node.id) ? 0 : 1);
        for (const id of plan.keys()) expect(sim.status(id)).toBe("reused");
      }),
      { numRuns: 100 },
    );
  });

  it("with no overrides and every node succeeded, every node is reused and the run is over at once", () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const input = build({ ...c, old: c.old.map(() => "succeeded" as const), knownResult: c.knownResult.map(() => true), overrides: {} });
        const plan = planResume(input);
        expect(plan.size).toBe(input.dag.nodes.length);
        const sim = new RunSim(input.dag);
        for (const id of plan.keys()) sim.set(id, "reused");
        expect(sim.step()).toMatchObject({ dispatch: [], runStatus: "succeeded" });
      }),
      { numRuns: 50 },
    );
  });

  it("a node continues (runs only its failed partitions) exactly when it failed in some partitions but not all, with a known MLflow run, kept its parameters, and every ancestor is reused", () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const input = build(c);
        const plan = planResume(input);
        const continued = planContinued(input, plan);
        const anc = ancestors(input.dag);
        const old = new Map(input.oldNodes.map((n) => [n.nodeId, n]));
        for (const node of input.dag.nodes) {
          const o = old.get(node.id)!;
          const p = o.partial;
          const failed = p ? parseIndexes(p.partitions).filter((i) => i < p.total).length : 0;
          const expected =
            o.status === "failed" &&
            p !== undefined &&
            p.mlflowRunId !== "" &&
            failed > 0 &&
            failed < p.total &&
            !paramsChanged(node, input.oldParams, input.newParams) &&
            [...anc.get(node.id)!].every((a) => plan.has(a));
          expect(continued.has(node.id), node.id).toBe(expected);
          if (expected) expect(continued.get(node.id)).toEqual(p);
          // Never both: a reused node does not run at all.
          if (continued.has(node.id)) expect(plan.has(node.id)).toBe(false);
        }
      }),
      { numRuns: 200 },
    );
  });

  it("a continued node is dispatched at once, in the resumed run's first decision (its upstream nodes are all reused)", () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const input = build(c);
        const plan = planResume(input);
        const continued = planContinued(input, plan);
        const sim = new RunSim(input.dag);
        for (const id of plan.keys()) sim.set(id, "reused");
        const first = new Set(sim.step().dispatch.map((d) => d.nodeId));
        for (const id of continued.keys()) expect(first.has(id), id).toBe(true);
      }),
      { numRuns: 100 },
    );
  });
});
