import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { upstreamOf, type Dag } from "../../../proto/dag";
import { acyclicDagArb } from "../../../proto/dag/testing";
import { isTerminalRun, type NodeStatus } from "../../../proto/status";
import type { SchedulerDecision } from "./index";
import { mustValidate, prng, RunSim } from "./testing";

const NONE = { dispatch: [], cancel: [], skip: [], cancelPending: [], abandon: [], accept: [] };

/**
 * A run driven to its end: each round decides and applies, checks idempotence, then completes a
 * random batch of active nodes. `outcome(id, attempt)` says how a node's attempt ends.
 * `beforeRound` may change the run (e.g. request cancellation).
 */
function drive(dag: Dag, seed: number, outcome: (id: string, attempt: number, sim: RunSim) => NodeStatus, beforeRound: (round: number, sim: RunSim) => void = () => {}) {
  const sim = new RunSim(dag);
  const rand = prng(seed);
  const up = upstreamOf(dag);
  const dispatches = new Map<string, number[]>();
  const maxRounds = dag.nodes.length * 24 + 20;
  for (let round = 0; round < maxRounds; round++) {
    beforeRound(round, sim);
    const before = new Map([...sim.states].map(([id, s]) => [id, s.status]));
    const d = sim.step();
    for (const { nodeId, attempt } of d.dispatch) {
      // Dispatched only after every upstream node succeeded.
      for (const u of up.get(nodeId)!) expect(before.get(u)).toBe("succeeded");
      dispatches.set(nodeId, [...(dispatches.get(nodeId) ?? []), attempt]);
    }
    // Idempotent: the applied state yields no new actions.
    expect(sim.peek()).toEqual({ ...NONE, runStatus: sim.runStatus });
    const active = sim.active();
    if (active.length === 0) {
      if (isTerminalRun(sim.runStatus)) return { sim, dispatches };
      continue;
    }
    // Complete a random non-empty batch of active nodes, in random order; move others along.
    for (const id of active) {
      const r = rand();
      if (r < 0.5 || id === active[active.length - 1]) sim.set(id, outcome(id, sim.states.get(id)!.attempt, sim));
      else if (r < 0.75) sim.set(id, sim.status(id) === "dispatched" ? "building" : "running");
    }
  }
  throw new Error(`run did not end after ${maxRounds} rounds (status ${sim.runStatus})`);
}

/** Descendants of `roots` (not including them unless reachable from another root). */
function descendants(dag: Dag, roots: Set<string>): Set<string> {
  const down = new Map<string, string[]>();
  for (const [id, ups] of upstreamOf(dag)) for (const u of ups) down.set(u, [...(down.get(u) ?? []), id]);
  const out = new Set<string>();
  const stack = [...roots];
  while (stack.length > 0) {
    for (const d of down.get(stack.pop()!) ?? []) {
      if (!out.has(d)) {
        out.add(d);
        stack.push(d);
      }
    }
  }
  return out;
}

const dagWith = (maxNodes: number, maxRetries: number) =>
  acyclicDagArb({ maxNodes, maxRetries }).chain((g) =>
    fc.record({
      g: fc.constant(g),
      seed: fc.integer(),
      // Per node (creation order): how many attempts fail, and whether it fails for good.
      failures: fc.array(fc.nat({ max: maxRetries }), { minLength: g.ids.length, maxLength: g.ids.length }),
      doomed: fc.array(
        fc.nat({ max: 7 }).map((x) => x === 0),
        { minLength: g.ids.length, maxLength: g.ids.length },
      ),
    }),
  );

describe("decide properties", () => {
  it("dispatches every node exactly once, in dependency order, and the run succeeds", () => {
    fc.assert(
      fc.property(acyclicDagArb({ maxNodes: 150 }), fc.integer(), ({ doc }, seed) => {
        const dag = mustValidate(doc);
        const { sim, dispatches } = drive(dag, seed, () => "succeeded");
        expect(sim.runStatus).toBe("succeeded");
        for (const node of dag.nodes) expect(dispatches.get(node.id)).toEqual([1]);
      }),
      { numRuns: 60 },
    );
  });

  it("retries: a node failing k ≤ retries times is dispatched k+1 times with attempts 1..k+1", () => {
    fc.assert(
      fc.property(dagWith(80, 3), ({ g, seed, failures }) => {
        const dag = mustValidate(g.doc);
        const failCount = new Map(g.ids.map((id, i) => [id, Math.min(failures[i]!, dag.nodes.find((n) => n.id === id)!.retries)]));
        const { sim, dispatches } = drive(dag, seed, (id, attempt) => (attempt <= failCount.get(id)! ? "failed" : "succeeded"));
        expect(sim.runStatus).toBe("succeeded");
        for (const [id, k] of failCount) expect(dispatches.get(id)).toEqual(Array.from({ length: k + 1 }, (_, i) => i + 1));
      }),
      { numRuns: 60 },
    );
  });

  it("failFast: the first node failing for good fails the run, cancels active nodes and dispatches nothing more", () => {
    fc.assert(
      fc.property(dagWith(80, 2), ({ g, seed, doomed }) => {
        const dag = mustValidate({ ...g.doc, failurePolicy: "failFast" });
        const bad = new Set(g.ids.filter((_, i) => doomed[i]));
        const { sim, dispatches } = drive(dag, seed, (id) => (bad.has(id) ? "failed" : "succeeded"));
        const decisions = sim.decisions;
        const failedAt = decisions.findIndex((d) => d.runStatus === "failed");
        if (bad.size === 0) {
          expect(sim.runStatus).toBe("succeeded");
          return;
        }
        expect(sim.runStatus).toBe("failed");
        const failing: SchedulerDecision = decisions[failedAt]!;
        expect(failing.dispatch).toEqual([]);
        for (const d of decisions.slice(failedAt + 1)) expect(d).toEqual({ ...NONE, runStatus: "failed" });
        // No pending node is left, and nodes are dispatched at most retries+1 times.
        for (const node of dag.nodes) {
          expect(sim.status(node.id)).not.toBe("pending");
          expect((dispatches.get(node.id) ?? []).length).toBeLessThanOrEqual(node.retries + 1);
        }
        // Some bad node used all its attempts.
        expect(dag.nodes.some((n) => bad.has(n.id) && dispatches.get(n.id)?.length === n.retries + 1)).toBe(true);
      }),
      { numRuns: 60 },
    );
  });

  it("continue: descendants of nodes failing for good are skipped, all other nodes succeed", () => {
    fc.assert(
      fc.property(dagWith(80, 2), ({ g, seed, doomed }) => {
        const dag = mustValidate({ ...g.doc, failurePolicy: "continue" });
        const bad = new Set(g.ids.filter((_, i) => doomed[i]));
        const below = descendants(dag, bad);
        const { sim, dispatches } = drive(dag, seed, (id) => (bad.has(id) ? "failed" : "succeeded"));
        expect(sim.runStatus).toBe(bad.size > 0 ? "failed" : "succeeded");
        for (const node of dag.nodes) {
          const id = node.id;
          if (below.has(id)) {
            expect(sim.status(id)).toBe("skipped");
            expect(dispatches.has(id)).toBe(false);
          } else if (bad.has(id)) {
            expect(sim.status(id)).toBe("failed");
            expect(dispatches.get(id)).toEqual(Array.from({ length: node.retries + 1 }, (_, i) => i + 1));
          } else {
            expect(sim.status(id)).toBe("succeeded");
            expect(dispatches.get(id)).toEqual([1]);
          }
        }
      }),
      { numRuns: 60 },
    );
  });

  it("cancellation: nothing is dispatched after the request, active nodes get one cancel, the run ends cancelled", () => {
    fc.assert(
      fc.property(acyclicDagArb({ maxNodes: 80 }), fc.integer(), fc.nat({ max: 30 }), ({ doc }, seed, at) => {
        const dag = mustValidate(doc);
        const rand = prng(seed ^ 0x5bd1e995);
        const toCancel = new Set<string>();
        let requestedAt = -1;
        const { sim } = drive(
          dag,
          seed,
          // A node told to cancel usually ends cancelled, but may finish first.
          (id) => (toCancel.has(id) && rand() < 0.8 ? "cancelled" : "succeeded"),
          (round, s) => {
            if (round === at && !isTerminalRun(s.runStatus)) {
              s.cancelRequested = true;
              requestedAt = s.decisions.length;
            }
            for (const id of s.decisions.at(-1)?.cancel ?? []) toCancel.add(id);
          },
        );
        if (requestedAt < 0) {
          expect(sim.runStatus).toBe("succeeded");
          return;
        }
        const after = sim.decisions.slice(requestedAt);
        for (const d of after) expect(d.dispatch).toEqual([]);
        for (const d of after.slice(1)) expect(d.cancel).toEqual([]);
        const allSucceeded = dag.nodes.every((n) => sim.status(n.id) === "succeeded");
        expect(sim.runStatus).toBe(allSucceeded ? "succeeded" : "cancelled");
        for (const node of dag.nodes) expect(["succeeded", "cancelled"]).toContain(sim.status(node.id));
      }),
      { numRuns: 80 },
    );
  });
});

describe("decide, properties of partition retries and minSuccessRatio", () => {
  it("a retry of only the failed partitions follows a partial failure; an accepted node met its ratio with no attempt left, and never runs again", () => {
    fc.assert(
      fc.property(
        acyclicDagArb({ maxNodes: 8 }),
        fc.integer(),
        fc.integer({ min: 0, max: 2 }),
        fc.option(fc.double({ min: 0.1, max: 1, noNaN: true }), { nil: undefined }),
        ({ doc }, seed, retries, ratio) => {
          const dag = mustValidate({ ...doc, nodes: doc.nodes.map((n) => ({ ...n, retries, ...(ratio !== undefined ? { minSuccessRatio: ratio } : {}) })) });
          const rand = prng(seed);
          const lastFailure = new Map<string, { total: number; failed: number }>();
          const sim = new RunSim(dag);
          const settled = new Set<string>();
          for (let round = 0; round < dag.nodes.length * 12 + 10 && !isTerminalRun(sim.runStatus); round++) {
            const d = sim.step();
            for (const x of d.dispatch) {
              expect(settled.has(x.nodeId), `${x.nodeId} dispatched after it succeeded`).toBe(false);
              const last = lastFailure.get(x.nodeId);
              expect(x.onlyFailed === true, `${x.nodeId} attempt ${x.attempt}`).toBe(last !== undefined && last.failed > 0 && last.failed < last.total);
            }
            for (const id of d.accept) {
              const last = lastFailure.get(id)!;
              const node = dag.nodes.find((n) => n.id === id)!;
              expect((last.total - last.failed) / last.total).toBeGreaterThanOrEqual(node.minSuccessRatio!);
              expect(sim.states.get(id)!.attempt).toBeGreaterThanOrEqual(1 + node.retries);
              settled.add(id);
            }
            for (const id of sim.active()) {
              if (rand() < 0.3) {
                sim.set(id, "succeeded");
                settled.add(id);
                lastFailure.delete(id);
              } else {
                const failed = 1 + Math.floor(rand() * 10);
                lastFailure.set(id, { total: 10, failed });
                sim.failPartitions(id, 10, failed);
              }
            }
          }
          expect(isTerminalRun(sim.runStatus)).toBe(true);
        },
      ),
      { numRuns: 150 },
    );
  });
});
