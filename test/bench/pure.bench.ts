/**
 * Pure functions on the hot paths, timed in this Node process: DAG validation (every create,
 * version and submit of a DAG) and the scheduler's decision (every agent event).
 */
import { decide, type NodeState } from "../../control/src/scheduler";
import { validateDag, type Dag } from "../../proto/dag";
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
  ];
}
