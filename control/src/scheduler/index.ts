/**
 * @module
 * The scheduler: a pure function from a DAG and the states of its node runs to the next actions.
 * It does no I/O; the caller applies the decision (node-run rows, outbox messages, run status) in
 * one D1 batch and calls `decide` again on the next event.
 *
 * Rules, applied in this order:
 * 1. A run that is `succeeded`, `failed` or `cancelled` is final: no actions, status unchanged.
 * 2. When every node has succeeded, the run is `succeeded` (even if a cancel came too late).
 *    A `reused` node (a resumed run's: its result is an earlier run's) counts as succeeded here
 *    and everywhere below; it is never dispatched, skipped or cancelled.
 * 3. Cancellation (`cancelRequested`, or the run already `cancelling`): pending nodes go to
 *    `cancelPending`; active nodes (dispatched/building/running) go to `cancel` once, at the
 *    moment the run enters `cancelling` (later decisions don't repeat them); nothing is
 *    dispatched or retried. The run is `cancelling` while any node is active, then `cancelled`.
 *    A *forced* cancel (`forceCancel`: the agent may be gone for good) also marks the active
 *    nodes `cancelled` at once (`abandon`), sends them `cancel` (again: while the first one's
 *    outbox row is kept, the message id makes it a no-op; otherwise an agent that gets it
 *    twice ignores the second), and the run is `cancelled` without waiting for any agent.
 * 4. A node has failed *for good* when it is `failed` with `attempt - lost >= 1 + retries` (`lost`:
 *    its attempts given up with their cluster, `scheduler/lost.ts`, which do not count), or `failed`
 *    with `final` (its agent said no retry can help: retries were spent within the attempt). A node that
 *    is `cancelled` or `skipped` without a cancel request counts the same way: its dependants
 *    can never run.
 *    - `failFast` (default): the run becomes `failed`; active nodes get `cancel`, pending nodes
 *      are skipped, nothing is dispatched or retried.
 *    - `continue`: pending descendants of such nodes are skipped; everything else goes on.
 *    A node failed for good whose partitions succeeded in at least its `minSuccessRatio` is
 *    *accepted* (`accept`): it counts as succeeded from then on, and names the ones that failed.
 * 5. A pending node whose upstream nodes have all succeeded is dispatched with `attempt + 1`
 *    (so 1 the first time). A `failed` node with attempts left is dispatched again with
 *    `attempt + 1` — only its failed partitions (`onlyFailed`) when the others succeeded; its
 *    dependants wait for it.
 * 6. Run status otherwise: `running` while anything is active or dispatched now (so `queued`
 *    becomes `running` with the first dispatch); `failed` once nothing is active or dispatchable.
 *
 * Applying a decision means: dispatched nodes become `dispatched` with the given attempt, skipped
 * ones `skipped`, `cancelPending` and `abandon` ones `cancelled`, accepted ones `succeeded`, and the run takes `runStatus`. `decide` on
 * the resulting state dispatches nothing new (it is idempotent).
 *
 * Node states missing from `nodes` count as `pending` with attempt 0; states of unknown node ids
 * are ignored. Cost: O(nodes + edges) per call.
 */
import { graphOf, topologicalIndices, type Dag } from "../../../proto/dag";
import { isActiveNode, isDoneNode, isTerminalRun, type NodeStatus, type RunStatus } from "../../../proto/status";

export interface NodeState {
  nodeId: string;
  status: NodeStatus;
  /** 0 = never dispatched; 1 = first attempt; each retry adds one. */
  attempt: number;
  /** A `failed` attempt after which no retry can help (the agent said so): failed for good whatever `retries` allows. */
  final?: boolean;
  /** The latest attempt failed in `failed` of the node's `total` partitions only (the others succeeded). */
  partitions?: { total: number; failed: number };
  /** How many of its attempts were lost with their cluster: they do not count against `retries`. */
  lost?: number;
}

export interface SchedulerInput {
  dag: Dag;
  runStatus: RunStatus;
  nodes: NodeState[];
  cancelRequested: boolean;
  /** With a cancel: do not wait for the agents to confirm (their cluster may be lost). */
  forceCancel?: boolean;
}

export interface SchedulerDecision {
  /** Send `start` for these (attempt 1 the first time, +1 on each retry; `onlyFailed`: a retry of the failed partitions only). */
  dispatch: { nodeId: string; attempt: number; onlyFailed?: true }[];
  /** Failed nodes whose partitions met their `minSuccessRatio`: they become `succeeded`. */
  accept: string[];
  /** Active nodes (dispatched/building/running) to send `cancel` to. */
  cancel: string[];
  /** Pending nodes that will never run now (an upstream failed or was skipped, or the run failed fast). */
  skip: string[];
  /** Pending nodes marked cancelled because the run was cancelled. */
  cancelPending: string[];
  /** Active nodes marked cancelled without their agent's confirmation (a forced cancel). */
  abandon: string[];
  /** The run's status after this decision. */
  runStatus: RunStatus;
}

/** Decides the next actions for a run. Pure; see the module comment for the rules. */
export function decide(input: SchedulerInput): SchedulerDecision {
  const { dag, runStatus } = input;
  const decision: SchedulerDecision = { dispatch: [], cancel: [], skip: [], cancelPending: [], abandon: [], accept: [], runStatus };
  if (isTerminalRun(runStatus)) return decision;

  const nodes = dag.nodes;
  const n = nodes.length;
  const position = new Map<string, number>(nodes.map((node, i) => [node.id, i]));
  const status: NodeStatus[] = new Array<NodeStatus>(n).fill("pending");
  const attempt: number[] = new Array<number>(n).fill(0);
  const counted: number[] = new Array<number>(n).fill(0);
  const final: boolean[] = new Array<boolean>(n).fill(false);
  const partial: boolean[] = new Array<boolean>(n).fill(false);
  for (const s of input.nodes) {
    const i = position.get(s.nodeId);
    if (i === undefined) continue;
    status[i] = s.status;
    // Attempts lost with their cluster are not the step's failures: only the others count.
    counted[i] = s.attempt - (s.lost ?? 0);
    attempt[i] = s.attempt;
    final[i] = s.final === true;
    const p = s.partitions;
    partial[i] = p !== undefined && p.failed > 0 && p.failed < p.total;
    // Enough partitions succeeded: the node is as good as succeeded (rule 4).
    const ratio = nodes[i]!.minSuccessRatio;
    if (
      s.status === "failed" &&
      ratio !== undefined &&
      p &&
      p.total > 0 &&
      (p.total - p.failed) / p.total >= ratio &&
      isFinalFailure("failed", s.attempt - (s.lost ?? 0), nodes[i]!.retries, s.final === true)
    ) {
      status[i] = "succeeded";
      decision.accept.push(s.nodeId);
    }
  }

  let succeeded = 0;
  let active = 0;
  let failedForGood = false;
  for (let i = 0; i < n; i++) {
    const s = status[i]!;
    if (isDoneNode(s)) succeeded++;
    else if (isActiveNode(s)) active++;
    else if (isFinalFailure(s, counted[i]!, nodes[i]!.retries, final[i]!)) failedForGood = true;
  }

  if (succeeded === n) return { ...decision, runStatus: "succeeded" };

  if (input.cancelRequested || runStatus === "cancelling") {
    const force = input.forceCancel === true;
    for (let i = 0; i < n; i++) {
      const s = status[i]!;
      if (s === "pending") decision.cancelPending.push(nodes[i]!.id);
      else if (isActiveNode(s)) {
        if (runStatus !== "cancelling" || force) decision.cancel.push(nodes[i]!.id);
        if (force) decision.abandon.push(nodes[i]!.id);
      }
    }
    decision.runStatus = active > 0 && !force ? "cancelling" : "cancelled";
    return decision;
  }

  if (failedForGood && dag.failurePolicy !== "continue") {
    for (let i = 0; i < n; i++) {
      const s = status[i]!;
      if (s === "pending") decision.skip.push(nodes[i]!.id);
      else if (isActiveNode(s)) decision.cancel.push(nodes[i]!.id);
    }
    decision.runStatus = "failed";
    return decision;
  }

  // `doomed[i]`: node i can never succeed (failed for good, cancelled, skipped, or skipped now).
  const graph = graphOf(dag);
  const doomed = new Array<boolean>(n).fill(false);
  if (failedForGood) {
    for (const i of topologicalIndices(graph)) {
      const s = status[i]!;
      if (isFinalFailure(s, counted[i]!, nodes[i]!.retries, final[i]!)) doomed[i] = true;
      else if (s === "pending" && graph.upstream[i]!.some((u) => doomed[u])) doomed[i] = true;
    }
  }

  for (let i = 0; i < n; i++) {
    const s = status[i]!;
    const id = nodes[i]!.id;
    if (s === "pending") {
      if (doomed[i]) decision.skip.push(id);
      else if (graph.upstream[i]!.every((u) => isDoneNode(status[u]!))) decision.dispatch.push({ nodeId: id, attempt: attempt[i]! + 1 });
    } else if (s === "failed" && !doomed[i]) {
      decision.dispatch.push({ nodeId: id, attempt: attempt[i]! + 1, ...(partial[i] ? { onlyFailed: true as const } : {}) });
    }
  }

  decision.runStatus = active > 0 || decision.dispatch.length > 0 ? "running" : "failed";
  return decision;
}

/** A node that will not run again and did not succeed. */
function isFinalFailure(status: NodeStatus, attempt: number, retries: number | undefined, final: boolean): boolean {
  if (status === "cancelled" || status === "skipped") return true;
  return status === "failed" && (final || attempt >= 1 + (retries ?? 0));
}
