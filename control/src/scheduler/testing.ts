/**
 * @module
 * A small simulator for scheduler tests: keeps node states, applies decisions the way the
 * control plane does, and completes active nodes as a cluster would. Test-only.
 */
import { validateDag, type Dag, type DagInput } from "../../../proto/dag";
import { isActiveNode, type NodeStatus, type RunStatus } from "../../../proto/status";
import { decide, type NodeState, type SchedulerDecision } from "./index";

/** Parses a DAG document or throws with its problems. */
export function mustValidate(doc: DagInput | unknown): Dag {
  const r = validateDag(doc);
  if (!r.ok) throw new Error(r.problems.map((p) => `${p.path}: ${p.message}`).join("\n"));
  return r.dag;
}

/** Deterministic PRNG (mulberry32) so fast-check controls every choice through one seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class RunSim {
  readonly states = new Map<string, NodeState>();
  runStatus: RunStatus = "queued";
  cancelRequested = false;
  /** Every decision, in order. */
  readonly decisions: SchedulerDecision[] = [];

  constructor(readonly dag: Dag) {
    for (const node of dag.nodes) this.states.set(node.id, { nodeId: node.id, status: "pending", attempt: 0 });
  }

  status(id: string): NodeStatus {
    return this.states.get(id)!.status;
  }

  /** Calls `decide` on the current state (without applying it). */
  peek(): SchedulerDecision {
    return decide({
      dag: this.dag,
      runStatus: this.runStatus,
      nodes: [...this.states.values()].map((s) => ({ ...s })),
      cancelRequested: this.cancelRequested,
    });
  }

  /** Decides and applies the decision as the control plane would. */
  step(): SchedulerDecision {
    const d = this.peek();
    this.decisions.push(d);
    for (const { nodeId, attempt } of d.dispatch) this.set(nodeId, "dispatched", attempt);
    for (const id of d.skip) this.set(id, "skipped");
    for (const id of [...d.cancelPending, ...d.abandon]) this.set(id, "cancelled");
    for (const id of d.accept) this.set(id, "succeeded");
    this.runStatus = d.runStatus;
    return d;
  }

  set(id: string, status: NodeStatus, attempt?: number, final?: boolean): void {
    const s = this.states.get(id)!;
    this.states.set(id, { nodeId: id, status, attempt: attempt ?? s.attempt, ...(final ? { final } : {}) });
  }

  /** The node's attempt failed in `failed` of its `total` partitions (the others succeeded). */
  failPartitions(id: string, total: number, failed: number, final?: boolean): void {
    const s = this.states.get(id)!;
    this.states.set(id, { nodeId: id, status: "failed", attempt: s.attempt, partitions: { total, failed }, ...(final ? { final } : {}) });
  }

  active(): string[] {
    return [...this.states.values()].filter((s) => isActiveNode(s.status)).map((s) => s.nodeId);
  }
}
