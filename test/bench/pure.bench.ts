/**
 * Pure functions on the hot paths, timed in this Node process: DAG validation (every create,
 * version and submit of a DAG) and the scheduler's decision (every agent event), also with half
 * the nodes cached (the hits accepted, their events applied, then the decision).
 */
import { decide, type NodeState } from "../../control/src/scheduler";
import { applyEvent, type NodeProgress } from "../../control/src/scheduler/node-events";
import { acceptHit, cachePolicy, effectiveCache, validateDag, type Dag } from "../../proto/dag";
import { layeredDag, type Sample, summarize } from "./stats";

const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 40) * 5;

function time(label: string, target: string, fn: () => unknown) {
  for (let i = 0; i < 20; i++) fn(); // warm up the JIT
  const samples: Sample[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const start = performance.now();
    fn();
    const ms = performance.now() - start;
    samples.push({ wall: ms, cpu: ms, d1: 0 });
  }
  return { ...summarize(label, target, samples), d1: "—" };
}

export function benchPure() {
  const doc = layeredDag("bench", 2000);
  const result = validateDag(doc);
  if (!result.ok) throw new Error("bench DAG does not validate");
  const dag: Dag = result.dag;
  const nodes: NodeState[] = dag.nodes.map((n, i) => ({ nodeId: n.id, status: i < 1000 ? "succeeded" : i < 1500 ? "running" : "pending", attempt: i < 1500 ? 1 : 0 }));
  return [
    time("validateDag, 2,000 nodes (Node)", "", () => validateDag(doc)),
    time("scheduler decide, 2,000 nodes (Node)", "", () => decide({ dag, runStatus: "running", nodes, cancelRequested: false })),
    time("cache: decide 2,000 nodes, half cached (Node)", "", () => decideHalfCached(dag)),
  ];
}

/**
 * A 2,000-node run of a DAG with `cache: true` whose first 1,000 nodes (in topological order: the
 * layered DAG's ids are) have hits: each hit accepted (`acceptHit`, as the lookup endpoint does),
 * its `succeeded` + `cachedFrom` event applied (`applyEvent`), then one decision over the run.
 */
function decideHalfCached(plain: Dag) {
  const dag: Dag = { ...plain, cache: true };
  const now = Date.now();
  const nodes: NodeState[] = [];
  for (const [i, n] of dag.nodes.entries()) {
    if (i >= 1000) {
      nodes.push({ nodeId: n.id, status: "pending", attempt: 0 });
      continue;
    }
    if (!acceptHit({ status: "succeeded", finishedAt: now - 60_000 }, cachePolicy(effectiveCache(dag, n)), now)) throw new Error("no hit");
    const after = applyEvent(dispatched, { attempt: 1, seq: 2, type: "succeeded", at: now, cachedFrom: { runId: "r", nodeRunId: `r-${n.id}`, mlflowRunId: "m" } });
    nodes.push({ nodeId: n.id, status: after.status, attempt: 1 });
  }
  return decide({ dag, runStatus: "running", nodes, cancelRequested: false });
}

const dispatched: NodeProgress = {
  status: "dispatched",
  attempt: 1,
  lastSeq: 1,
  partitions: { total: 0, done: 0, failed: 0, running: 0 },
  mlflowRunId: null,
  message: null,
  final: false,
  failedPartitions: null,
  partitionFailures: null,
  imageRef: null,
  cachedFrom: null,
  buildingSince: null,
  startedAt: null,
  finishedAt: null,
};
