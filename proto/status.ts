/**
 * @module
 * The statuses of a DAG run and of its node runs, and the sets the rules are written in. This is
 * their one home: the D1 columns (`db/schema.ts`), the API's enums (`api.ts`, `agent.ts`), the
 * scheduler, event application, the agent and the scripts all take them from here. Runtime-free.
 *
 * Run:  `queued → running → succeeded | failed | cancelling → cancelled`
 * Node: `pending → dispatched → building → running → succeeded | failed | cancelled | skipped`
 * (`skipped`: can never run, because an upstream node failed for good or the run failed fast.)
 * A resumed run's node that succeeded in the run it resumes is `reused` from its creation: never
 * dispatched, its outputs are the earlier node run's, and it counts as `succeeded` for its dependants.
 * A caching node whose key matched a succeeded node run (`proto/dag/cache.ts`) is `cached`: its
 * agent ran no step, its outputs are that node run's, and it counts as `succeeded` the same way.
 */

export const RUN_STATUSES = ["queued", "running", "succeeded", "failed", "cancelling", "cancelled"] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

/** A run in one of these is over: nothing is decided about it again. */
export const TERMINAL_RUN_STATUSES = ["succeeded", "failed", "cancelled"] as const satisfies readonly RunStatus[];
export type TerminalRunStatus = (typeof TERMINAL_RUN_STATUSES)[number];

export const NODE_STATUSES = ["pending", "dispatched", "building", "running", "succeeded", "failed", "cancelled", "skipped", "reused", "cached"] as const;
export type NodeStatus = (typeof NODE_STATUSES)[number];

/** Sent to an agent and not ended yet: a process may be running or about to (it gets `cancel`). */
export const ACTIVE_NODE_STATUSES = ["dispatched", "building", "running"] as const satisfies readonly NodeStatus[];
export type ActiveNodeStatus = (typeof ACTIVE_NODE_STATUSES)[number];

/**
 * The node run's current attempt is over: agent events no longer move it. (The node itself may
 * go on: the scheduler dispatches a `failed` one again while it has retries left.)
 */
export const TERMINAL_NODE_STATUSES = ["succeeded", "failed", "cancelled", "skipped", "reused", "cached"] as const satisfies readonly NodeStatus[];
export type TerminalNodeStatus = (typeof TERMINAL_NODE_STATUSES)[number];

/**
 * The node's outputs are there for its dependants: it succeeded in this run, or (`reused`) in the
 * run this one resumes, or (`cached`) in a node run with the same cache key.
 */
export const DONE_NODE_STATUSES = ["succeeded", "reused", "cached"] as const satisfies readonly NodeStatus[];
export type DoneNodeStatus = (typeof DONE_NODE_STATUSES)[number];

/** The run statuses a resume starts from (`POST /v1/runs/{id}/resume`). */
export const RESUMABLE_RUN_STATUSES = ["failed", "cancelled"] as const satisfies readonly RunStatus[];

/** How one attempt ends: the agent events that end it, and an executor's final states. */
export const ATTEMPT_OUTCOMES = ["succeeded", "failed", "cancelled"] as const satisfies readonly NodeStatus[];
export type AttemptOutcome = (typeof ATTEMPT_OUTCOMES)[number];

const member =
  <T extends string>(list: readonly T[]) =>
  (value: string): value is T =>
    (list as readonly string[]).includes(value);

/** Whether a run is over (`succeeded`, `failed`, `cancelled`). Takes any string: API answers are read as such. */
export const isTerminalRun: (status: string) => status is TerminalRunStatus = member(TERMINAL_RUN_STATUSES);
/** Whether a node run's current attempt is over (`succeeded`, `failed`, `cancelled`, `skipped`, `reused`, `cached`). */
export const isTerminalNode: (status: string) => status is TerminalNodeStatus = member(TERMINAL_NODE_STATUSES);
/** Whether a node run is with an agent and not ended (`dispatched`, `building`, `running`). */
export const isActiveNode: (status: string) => status is ActiveNodeStatus = member(ACTIVE_NODE_STATUSES);
/** Whether an agent event (or an executor's state) ends its attempt (`succeeded`, `failed`, `cancelled`). */
export const isAttemptOutcome: (type: string) => type is AttemptOutcome = member(ATTEMPT_OUTCOMES);
/** Whether a node's outputs are there for its dependants (`succeeded`, `reused`, `cached`). */
export const isDoneNode: (status: string) => status is DoneNodeStatus = member(DONE_NODE_STATUSES);
/** Whether a run can be resumed (`failed`, `cancelled`). */
export const isResumableRun: (status: string) => status is (typeof RESUMABLE_RUN_STATUSES)[number] = member(RESUMABLE_RUN_STATUSES);
