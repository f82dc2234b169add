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
 * A node that runs is *continued* ({@link planContinued}) — its first attempt is a retry of only
 * the partitions that failed in the run resumed, on top of that node run's MLflow run (the others'
 * outputs and partition runs kept) — when, in the run resumed:
 * - it `failed` with some partitions failed and the others succeeded (`partial`: its latest
 *   attempt's failed partitions, how many it has, and that attempt's MLflow run);
 * - its resolved parameters are unchanged, and every upstream node is reused (the same DAG
 *   version and windows are a resume's anyway). So its inputs, hence its partitions, are what
 *   they were: an upstream node that runs again may make other inputs, and then every partition
 *   runs. The same "unchanged" as for reuse: one rule.
 *
 * Cost: O(nodes + edges), plus one canonical JSON of each node's parameters (and, for a node that
 * failed partially, one parse of its failed partitions).
 */
import type { ReusedFrom } from "../../../proto/api";
import { graphOf, resolveNodeParams, topologicalIndices, upstreamOf, type Dag, type DagNode } from "../../../proto/dag";
import { parseIndexes } from "../../../proto/indexes";
import { isDoneNode, type NodeStatus } from "../../../proto/status";

type Params = Readonly<Record<string, string | number | boolean>>;

export interface ResumeInput {
  dag: Dag;
  /** The resumed run's params (DAG defaults merged with its submit's). */
  oldParams: Params;
  /** The new run's params (the old ones with the resume's overrides). */
  newParams: Params;
  /** The resumed run's node runs; `from`: where a done node's result is (null: unknown, it runs again). */
  oldNodes: { nodeId: string; status: NodeStatus; from: ReusedFrom | null; partial?: PartialFailure | undefined }[];
}

/** A failed node run's latest attempt in which only some partitions failed. */
export interface PartialFailure {
  /** The old node run (of the run resumed). */
  runId: string;
  nodeRunId: string;
  /** Its latest attempt and that attempt's MLflow run (where the manifest and the others' outputs are). */
  attempt: number;
  mlflowRunId: string;
  /** The partitions that failed (`"3,7"`), of `total`. */
  partitions: string;
  total: number;
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

/**
 * nodeId → the old node run's partial failure, for the nodes whose new first attempt runs only
 * the partitions that failed there (see the module comment). `plan`: {@link planResume}'s.
 */
export function planContinued(input: ResumeInput, plan: ResumePlan): Map<string, PartialFailure> {
  const old = new Map(input.oldNodes.map((n) => [n.nodeId, n]));
  const up = upstreamOf(input.dag);
  const out = new Map<string, PartialFailure>();
  for (const node of input.dag.nodes) {
    const p = old.get(node.id)?.partial;
    if (!p || old.get(node.id)!.status !== "failed" || plan.has(node.id) || !isPartial(p)) continue;
    if (!(up.get(node.id) ?? []).every((u) => plan.has(u))) continue;
    if (paramsChanged(node, input.oldParams, input.newParams)) continue;
    out.set(node.id, p);
  }
  return out;
}

/** Some partitions failed, not all, and the run that holds the others' outputs is known. */
const isPartial = (p: PartialFailure): boolean => {
  const failed = parseIndexes(p.partitions).filter((i) => i < p.total).length;
  return p.mlflowRunId !== "" && failed > 0 && failed < p.total;
};

/** Whether the node's resolved parameters (and env) differ between the two sets of run params. */
export function paramsChanged(node: DagNode, oldParams: Params, newParams: Params): boolean {
  const a = resolveNodeParams(node, oldParams);
  const b = resolveNodeParams(node, newParams);
  return canonical(a.parameters) !== canonical(b.parameters) || canonical(a.env) !== canonical(b.env);
}

const canonical = (v: Record<string, unknown> | undefined): string => JSON.stringify(Object.entries(v ?? {}).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)));
