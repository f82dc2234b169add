/**
 * @module
 * The MLflow Parallels SDK (`mlflow-parallels/client`): a typed client of the control plane's REST
 * API. `fetch` only — it runs in browsers, in workerd (Cloudflare Workers) and in Node 20+.
 * Answers are read with the zod schemas of `proto/api.ts`; every failure is a `ParallelsError`.
 *
 * @example
 * ```ts
 * import { ParallelsClient } from "mlflow-parallels/client";
 * const client = new ParallelsClient({ baseUrl: "http://127.0.0.1:8787", token });
 * await client.dags.apply(yamlText);                       // PUT /v1/dags/{name}
 * const run = await client.runs.submit({ dag: "wordcount", params: { top: 5 } });
 * const done = await client.runs.wait(run.id, { onProgress: (r) => console.log(r.status) });
 * for await (const r of client.runs.list({ dag: "wordcount" })) console.log(r.id, r.status);
 * ```
 */
import { type ClientOptions, Transport } from "./http";
import { Clusters, Dags, Schedules, Tokens } from "./resources";
import { Runs } from "./runs";

export class ParallelsClient {
  readonly clusters: Clusters;
  readonly dags: Dags;
  readonly runs: Runs;
  readonly schedules: Schedules;
  readonly tokens: Tokens;
  /** The base URL, without a trailing slash. */
  readonly baseUrl: string;

  constructor(opts: ClientOptions) {
    const http = new Transport(opts);
    this.baseUrl = http.baseUrl;
    this.clusters = new Clusters(http);
    this.dags = new Dags(http);
    this.runs = new Runs(http);
    this.schedules = new Schedules(http);
    this.tokens = new Tokens(http);
  }
}

export type { CallOptions, ClientOptions, FetchLike, RetryOptions } from "./http";
export { ParallelsError, isParallelsError, type ClientErrorCode, type ErrorCode, type ParallelsErrorInit, type ProblemDetail } from "./errors";
export { Paginator, type Page } from "./paging";
export type { Clusters, Dags, DagDocument, Schedules, Tokens } from "./resources";
export type { Runs, SubmitOptions, WaitOptions } from "./runs";
export type * from "./types";
export type { Dag, DagInput, DagNode } from "../dag";
export { isTerminalRun, isTerminalNode, isActiveNode, RUN_STATUSES, NODE_STATUSES, TERMINAL_RUN_STATUSES } from "../status";
