/**
 * @module
 * The SDK's types: the API's bodies as the zod schemas of `proto/api.ts` say — requests in their
 * input form (defaults optional), answers in their output form. One source for the control plane
 * and every client, so they cannot drift apart.
 */
import type { z } from "zod";
import type * as api from "../api";

export type Scope = api.Scope;
export type ParamValue = api.ParamValue;
export type RunStatus = z.output<typeof api.RunStatus>;
export type NodeStatus = z.output<typeof api.NodeStatus>;

export type TokenCreateInput = z.input<typeof api.TokenCreate>;
export type TokenView = z.output<typeof api.TokenView>;
export type TokenCreated = z.output<typeof api.TokenCreated>;

export type ClusterKind = z.output<typeof api.ClusterKind>;
export type ClusterStatus = z.output<typeof api.ClusterStatus>;
export type ClusterCreateInput = z.input<typeof api.ClusterCreate>;
export type ClusterView = z.output<typeof api.ClusterView>;
export type ClusterCreated = z.output<typeof api.ClusterCreated>;
export type ClusterDeleted = z.output<typeof api.ClusterDeleted>;

export type DagSummary = z.output<typeof api.DagSummary>;
export type DagView = z.output<typeof api.DagView>;
export type DagVersionSummary = z.output<typeof api.DagVersionSummary>;
export type DagValidation = z.output<typeof api.DagValidation>;

export type RunSubmitInput = z.input<typeof api.RunSubmit>;
export type RunResumeInput = z.input<typeof api.RunResume>;
export type RunView = z.output<typeof api.RunView>;
export type NodeRunView = z.output<typeof api.NodeRunView>;
export type RunListQuery = Omit<z.input<typeof api.RunListQuery>, "cursor" | "limit"> & ListOptions;

export type OverlapPolicy = z.output<typeof api.OverlapPolicy>;
export type ScheduleCreateInput = z.input<typeof api.ScheduleCreate>;
export type ScheduleView = z.output<typeof api.ScheduleView>;

export type Deleted = z.output<typeof api.Deleted>;

/** Options of every list. */
export interface ListOptions {
  /** Items per page (1–200; the API's default is 50). Iterating walks every page whatever it is. */
  limit?: number;
  /** Start after this cursor (a page's `nextCursor`). */
  cursor?: string;
}
