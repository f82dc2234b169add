/**
 * @module
 * Which nodes of a resumed run are `reused` (`POST /v1/runs/{id}/resume`): pure, beside `decide`.
 *
 * A node is reused when, in the run resumed:
 * - it is done (`succeeded`, or itself `reused`) and its result is known (`from` is given: the node
 *   run that made it and that run's MLflow run);
 * - its resolved parameters (`parameters` and `env` after `${params.…}` substitution) are the same
 *   with the new run's params as with the old run's;
 * - every upstream node is reused.
 * Every other node runs, and so does everything downstream of it. Hence a reused node never has a
 * non-reused ancestor, and a node whose parameters changed is never reused.
 *
 * Cost: O(nodes + edges), plus one canonical JSON of each node's parameters.
 */
import type { ReusedFrom } from "../../../proto/api";
import { graphOf, resolveNodeParams, topologicalIndices, type Dag, type DagNode } from "../../../proto/dag";
import { isDoneNode, type NodeStatus } from "../../../proto/status";

type Params = Readonly<Record<string, string | number | boolean>>;

export interface ResumeInput {
  dag: Dag;
  /** The resumed run's params (DAG defaults merged with its submit's). */
  oldParams: Params;
  /** The new run's params (the old ones with the resume's overrides). */
  newParams: Params;
  /** The resumed run's node runs; `from`: where a done node's result is (null: unknown, it runs again). */
  oldNodes: { nodeId: string; status: NodeStatus; from: ReusedFrom | null }[];
}

/** nodeId → where its result comes from, for the reused nodes only. */
export type ResumePlan = Map<string, ReusedFrom>;

export function planResume(input: ResumeInput): ResumePlan {
  const { dag } = input;
  const old = new Map(input.oldNodes.map((n) => [n.nodeId, n]));
  const graph = graphOf(dag);
  const reused = new Array<boolean>(dag.nodes.length).fill(false);
  const plan: ResumePlan = new Map();
  for (const i of topologicalIndices(graph)) {
    const node = dag.nodes[i]!;
    const before = old.get(node.id);
    if (!before?.from || !isDoneNode(before.status)) continue;
    if (!graph.upstream[i]!.every((u) => reused[u])) continue;
    if (paramsChanged(node, input.oldParams, input.newParams)) continue;
    reused[i] = true;
    plan.set(node.id, before.from);
  }
  return plan;
}

/** Whether the node's resolved parameters (and env) differ between the two sets of run params. */
export function paramsChanged(node: DagNode, oldParams: Params, newParams: Params): boolean {
  const a = resolveNodeParams(node, oldParams);
  const b = resolveNodeParams(node, newParams);
  return canonical(a.parameters) !== canonical(b.parameters) || canonical(a.env) !== canonical(b.env);
}

const canonical = (v: Record<string, unknown> | undefined): string => JSON.stringify(Object.entries(v ?? {}).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)));
