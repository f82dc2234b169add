/**
 * @module
 * Clusters, DAGs, schedules and tokens: one small class per resource, each call one endpoint of
 * the route table (`control/src/routes/`), its answer read with that endpoint's schema.
 */
import type { z } from "zod";
import {
  ClusterCreated,
  ClusterDeleted,
  ClusterPage,
  ClusterView,
  DagPage,
  DagValidation,
  DagVersionPage,
  DagView,
  Deleted,
  SchedulePage,
  ScheduleView,
  TokenCreated,
  TokenPage,
  TokenView,
} from "../api";
import type { DagInput } from "../dag";
import { parseText } from "../dag/validate";
import { type CallOptions, path, type Transport } from "./http";
import { ParallelsError } from "./errors";
import { type Page, Paginator } from "./paging";
import type * as T from "./types";
import type { ClusterCreateInput, ListOptions, ScheduleCreateInput, TokenCreateInput } from "./types";

/** A paginator over one of the lists (`?limit=&cursor=`). */
export function listOf<S extends z.ZodType<Page<unknown>>>(
  http: Transport,
  p: string,
  schema: S,
  q: ListOptions & Record<string, string | number | undefined>,
  opts?: CallOptions,
): Paginator<z.output<S>["items"][number]> {
  const { cursor, ...rest } = q;
  return new Paginator((c) => http.request({ method: "GET", path: p, query: { ...rest, cursor: c }, schema, idempotent: true, signal: opts?.signal }), cursor);
}

export class Clusters {
  constructor(private readonly http: Transport) {}

  /** Answers once with the agent's single-use bootstrap token and its `helm install` line. */
  create(input: ClusterCreateInput, opts?: CallOptions): Promise<T.ClusterCreated> {
    return this.http.request({ method: "POST", path: "/v1/clusters", body: { json: input }, schema: ClusterCreated, idempotent: false, signal: opts?.signal });
  }

  list(q: ListOptions = {}, opts?: CallOptions): Paginator<T.ClusterView> {
    return listOf(this.http, "/v1/clusters", ClusterPage, { ...q }, opts);
  }

  get(name: string, opts?: CallOptions): Promise<T.ClusterView> {
    return this.http.request({ method: "GET", path: path`/v1/clusters/${name}`, schema: ClusterView, idempotent: true, signal: opts?.signal });
  }

  /** A new bootstrap token; the previous one stops working. */
  bootstrap(name: string, opts?: CallOptions): Promise<T.ClusterCreated> {
    return this.http.request({ method: "POST", path: path`/v1/clusters/${name}/bootstrap`, schema: ClusterCreated, idempotent: false, signal: opts?.signal });
  }

  /** Revokes the cluster's credentials; refused (409) while work placed on it is not over. */
  delete(name: string, opts?: CallOptions): Promise<T.ClusterDeleted> {
    return this.http.request({ method: "DELETE", path: path`/v1/clusters/${name}`, schema: ClusterDeleted, idempotent: true, signal: opts?.signal });
  }
}

/** A DAG as an object, or as the text of a YAML (or JSON) file, sent as written. */
export type DagDocument = DagInput | string;

const dagBody = (doc: DagDocument) => (typeof doc === "string" ? { yaml: doc } : { json: doc });

export class Dags {
  constructor(private readonly http: Transport) {}

  /**
   * Creates the DAG or adds a version (`PUT /v1/dags/{name}`, the name taken from the document);
   * an unchanged document returns the latest version. `created` is true for a new DAG.
   */
  async apply(doc: DagDocument, opts?: CallOptions): Promise<T.DagView & { created: boolean }> {
    const name = nameOf(doc);
    // A document without a readable name cannot be PUT: let the API's validation say all that is wrong with it.
    if (name === undefined) {
      await this.validate(doc, opts);
      throw new ParallelsError({ code: "invalid_dag", status: 0, message: "the DAG document has no name", details: [{ path: "name", message: "required" }], method: "PUT", path: "/v1/dags/{name}" });
    }
    const { status, body } = await this.http.exchange({ method: "PUT", path: path`/v1/dags/${name}`, body: dagBody(doc), schema: DagView, idempotent: true, signal: opts?.signal });
    return { ...body, created: status === 201 };
  }

  /** Version 1 of a new DAG; 409 if the name is taken (`apply` adds versions). */
  create(doc: DagDocument, opts?: CallOptions): Promise<T.DagView> {
    return this.http.request({ method: "POST", path: "/v1/dags", body: dagBody(doc), schema: DagView, idempotent: false, signal: opts?.signal });
  }

  /** The DAG as it would be stored; an invalid one rejects with `invalid_dag` and every problem in `details`. */
  validate(doc: DagDocument, opts?: CallOptions): Promise<T.DagValidation> {
    return this.http.request({ method: "POST", path: "/v1/dags:validate", body: dagBody(doc), schema: DagValidation, idempotent: true, signal: opts?.signal });
  }

  /** The latest version, or `version`. */
  get(name: string, q: { version?: number } = {}, opts?: CallOptions): Promise<T.DagView> {
    return this.http.request({ method: "GET", path: path`/v1/dags/${name}`, query: { version: q.version }, schema: DagView, idempotent: true, signal: opts?.signal });
  }

  list(q: ListOptions = {}, opts?: CallOptions): Paginator<T.DagSummary> {
    return listOf(this.http, "/v1/dags", DagPage, { ...q }, opts);
  }

  /** Every version, newest first. */
  async versions(name: string, opts?: CallOptions): Promise<T.DagVersionSummary[]> {
    return (await this.http.request({ method: "GET", path: path`/v1/dags/${name}/versions`, schema: DagVersionPage, idempotent: true, signal: opts?.signal })).items;
  }

  /** Hides the DAG (its runs stay); refused (409) while schedules use it. */
  delete(name: string, opts?: CallOptions): Promise<T.Deleted> {
    return this.http.request({ method: "DELETE", path: path`/v1/dags/${name}`, schema: Deleted, idempotent: true, signal: opts?.signal });
  }
}

/** The `name` of a DAG document, if it has a readable one (YAML is a superset of JSON). */
function nameOf(doc: DagDocument): string | undefined {
  const value = typeof doc === "string" ? (parseText(doc, "yaml") as { value?: unknown }).value : doc;
  const name = typeof value === "object" && value !== null ? (value as { name?: unknown }).name : undefined;
  return typeof name === "string" && name !== "" ? name : undefined;
}

export class Schedules {
  constructor(private readonly http: Transport) {}

  create(input: ScheduleCreateInput, opts?: CallOptions): Promise<T.ScheduleView> {
    return this.http.request({ method: "POST", path: "/v1/schedules", body: { json: input }, schema: ScheduleView, idempotent: false, signal: opts?.signal });
  }

  list(q: ListOptions = {}, opts?: CallOptions): Paginator<T.ScheduleView> {
    return listOf(this.http, "/v1/schedules", SchedulePage, { ...q }, opts);
  }

  get(name: string, opts?: CallOptions): Promise<T.ScheduleView> {
    return this.http.request({ method: "GET", path: path`/v1/schedules/${name}`, schema: ScheduleView, idempotent: true, signal: opts?.signal });
  }

  pause(name: string, opts?: CallOptions): Promise<T.ScheduleView> {
    return this.setEnabled(name, false, opts);
  }

  /** Resumes from the next occurrence after now; those missed while paused are skipped. */
  resume(name: string, opts?: CallOptions): Promise<T.ScheduleView> {
    return this.setEnabled(name, true, opts);
  }

  delete(name: string, opts?: CallOptions): Promise<T.Deleted> {
    return this.http.request({ method: "DELETE", path: path`/v1/schedules/${name}`, schema: Deleted, idempotent: true, signal: opts?.signal });
  }

  private setEnabled(name: string, enabled: boolean, opts?: CallOptions): Promise<T.ScheduleView> {
    // Setting a flag to a value: sending it twice ends the same.
    return this.http.request({ method: "PATCH", path: path`/v1/schedules/${name}`, body: { json: { enabled } }, schema: ScheduleView, idempotent: true, signal: opts?.signal });
  }
}

export class Tokens {
  constructor(private readonly http: Transport) {}

  /** The answer's `token` is the secret, shown this once. */
  create(input: TokenCreateInput, opts?: CallOptions): Promise<T.TokenCreated> {
    return this.http.request({ method: "POST", path: "/v1/tokens", body: { json: input }, schema: TokenCreated, idempotent: false, signal: opts?.signal });
  }

  list(q: ListOptions = {}, opts?: CallOptions): Paginator<T.TokenView> {
    return listOf(this.http, "/v1/tokens", TokenPage, { ...q }, opts);
  }

  revoke(id: string, opts?: CallOptions): Promise<T.TokenView> {
    return this.http.request({ method: "DELETE", path: path`/v1/tokens/${id}`, schema: TokenView, idempotent: true, signal: opts?.signal });
  }
}
