/**
 * GET /v1/openapi.json — generated from the same zod schemas that validate requests, so the
 * document cannot drift from what the API accepts. Built once per isolate.
 */
import type { Hono } from "hono";
import { z } from "zod";
import * as api from "../../../proto/api";
import * as agent from "../../../proto/agent";
import { DagSchema } from "../../../proto/dag";
import { ErrorBodySchema } from "../../../proto/errors";
import type { AppEnv } from "../env";

const components = {
  Dag: [DagSchema, "input"],
  Error: [ErrorBodySchema, "output"],
  WorkspaceCreate: [api.WorkspaceCreate, "input"],
  TokenCreate: [api.TokenCreate, "input"],
  Token: [api.TokenView, "output"],
  ClusterCreate: [api.ClusterCreate, "input"],
  Cluster: [api.ClusterView, "output"],
  ClusterCreated: [api.ClusterCreated, "output"],
  DagSummary: [api.DagSummary, "output"],
  RunSubmit: [api.RunSubmit, "input"],
  Run: [api.RunView, "output"],
  ScheduleCreate: [api.ScheduleCreate, "input"],
  Schedule: [api.ScheduleView, "output"],
  AgentRegister: [agent.AgentRegister, "input"],
  AgentRegistered: [agent.AgentRegistered, "output"],
  Heartbeat: [agent.Heartbeat, "input"],
  EventBatch: [agent.EventBatch, "input"],
  EventBatchResult: [agent.EventBatchResult, "output"],
} as const;

const ref = (name: keyof typeof components) => ({ $ref: `#/components/schemas/${name}` });
const json = (name: keyof typeof components) => ({ "application/json": { schema: ref(name) } });
const errors = Object.fromEntries(
  [
    ["400", "malformed or invalid request"],
    ["401", "missing or unknown token"],
    ["403", "the token's scope is too weak"],
    ["404", "not found in the token's workspace"],
    ["409", "conflicts with the current state"],
    ["413", "body larger than 1 MiB"],
    ["415", "a body that is neither JSON nor YAML"],
    ["422", "the DAG (or the run's use of it) cannot be accepted"],
    ["503", "a dependency (NATS) is not reachable; retry"],
  ].map(([status, description]) => [status, { description, content: json("Error") }]),
);
type Op = { summary: string; body?: keyof typeof components; ok: [string, keyof typeof components | null]; scope: api.Scope | "agent" | "bootstrap"; params?: string[] };
const QUERY = new Set(["version", "cursor", "limit", "status", "dag", "force"]);
const INTEGER = new Set(["version", "limit"]);
const param = (p: string) => ({
  name: p,
  in: p === "Idempotency-Key" ? "header" : QUERY.has(p) ? "query" : "path",
  required: ["name", "id"].includes(p),
  schema: { type: INTEGER.has(p) ? "integer" : "string" },
});
const op = (o: Op) => ({
  summary: o.summary,
  description:
    o.scope === "agent" ? "Needs the agent credential returned by registration." : o.scope === "bootstrap" ? "Authenticated by the bootstrap token in the body." : `Needs a token with the \`${o.scope}\` scope (or stronger).`,
  ...(o.scope === "bootstrap" ? { security: [] } : {}),
  ...(o.params ? { parameters: o.params.map(param) } : {}),
  ...(o.body ? { requestBody: { required: true, content: o.body === "Dag" ? { ...json("Dag"), "application/yaml": { schema: ref("Dag") } } : json(o.body) } } : {}),
  responses: { [o.ok[0]]: { description: "success", ...(o.ok[1] ? { content: json(o.ok[1]) } : {}) }, ...errors },
});

function buildDocument() {
  return {
    openapi: "3.1.0",
    info: { title: "MLflow Parallels control plane", version: "1" },
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
      schemas: Object.fromEntries(Object.entries(components).map(([name, [schema, io]]) => [name, z.toJSONSchema(schema, { io, unrepresentable: "any" })])),
    },
    security: [{ bearer: [] }],
    paths: {
      "/v1/workspaces": { post: op({ summary: "Create a workspace and its first admin token", body: "WorkspaceCreate", ok: ["201", null], scope: "admin" }) },
      "/v1/tokens": { post: op({ summary: "Create an API token", body: "TokenCreate", ok: ["201", "Token"], scope: "admin" }), get: op({ summary: "List tokens", ok: ["200", null], scope: "admin", params: ["cursor", "limit"] }) },
      "/v1/tokens/{id}": { delete: op({ summary: "Revoke a token", ok: ["200", "Token"], scope: "admin", params: ["id"] }) },
      "/v1/clusters": { post: op({ summary: "Create a cluster; answers once with its bootstrap token and helm install line", body: "ClusterCreate", ok: ["201", "ClusterCreated"], scope: "admin" }), get: op({ summary: "List clusters", ok: ["200", null], scope: "read", params: ["cursor", "limit"] }) },
      "/v1/clusters/{name}": { get: op({ summary: "Get a cluster", ok: ["200", "Cluster"], scope: "read", params: ["name"] }), delete: op({ summary: "Delete a cluster and revoke its credentials", ok: ["200", null], scope: "admin", params: ["name"] }) },
      "/v1/clusters/{name}/bootstrap": { post: op({ summary: "Issue a new bootstrap token", ok: ["200", "ClusterCreated"], scope: "admin", params: ["name"] }) },
      "/v1/dags": { post: op({ summary: "Create a DAG (JSON or YAML)", body: "Dag", ok: ["201", null], scope: "write" }), get: op({ summary: "List DAGs", ok: ["200", null], scope: "read", params: ["cursor", "limit"] }) },
      "/v1/dags:validate": { post: op({ summary: "Validate a DAG without storing it; 422 lists every problem", body: "Dag", ok: ["200", null], scope: "read" }) },
      "/v1/dags/{name}": {
        put: op({ summary: "Add a version (or create); an unchanged document returns the latest version", body: "Dag", ok: ["200", null], scope: "write", params: ["name"] }),
        get: op({ summary: "Get the latest or a given version", ok: ["200", null], scope: "read", params: ["name", "version"] }),
        delete: op({ summary: "Delete (hide) a DAG; its runs stay", ok: ["200", null], scope: "write", params: ["name"] }),
      },
      "/v1/dags/{name}/versions": { get: op({ summary: "List a DAG's versions", ok: ["200", null], scope: "read", params: ["name"] }) },
      "/v1/runs": { post: op({ summary: "Submit a run (Idempotency-Key makes a retry return the same run)", body: "RunSubmit", ok: ["201", "Run"], scope: "write", params: ["Idempotency-Key"] }), get: op({ summary: "List runs, newest first", ok: ["200", null], scope: "read", params: ["dag", "status", "cursor", "limit"] }) },
      "/v1/runs/{id}": { get: op({ summary: "Get a run with its node runs and counters", ok: ["200", "Run"], scope: "read", params: ["id"] }) },
      "/v1/runs/{id}/cancel": { post: op({ summary: "Cancel a run (202 while agents stop its steps; force=true: cancelled at once, not waiting for agents that may be gone)", ok: ["202", "Run"], scope: "write", params: ["id", "force"] }) },
      "/v1/agent/register": { post: op({ summary: "Register a cluster's agent (single-use bootstrap token)", body: "AgentRegister", ok: ["201", "AgentRegistered"], scope: "bootstrap" }) },
      "/v1/agent/heartbeat": { post: op({ summary: "Agent heartbeat (every ~15 s; offline after 3 missed)", body: "Heartbeat", ok: ["200", null], scope: "agent" }) },
      "/v1/agent/events": { post: op({ summary: "Batched events of the agent's node runs, applied idempotently", body: "EventBatch", ok: ["200", "EventBatchResult"], scope: "agent" }) },
      "/v1/schedules": { post: op({ summary: "Create a schedule", body: "ScheduleCreate", ok: ["201", "Schedule"], scope: "write" }), get: op({ summary: "List schedules", ok: ["200", null], scope: "read", params: ["cursor", "limit"] }) },
      "/v1/schedules/{name}": {
        get: op({ summary: "Get a schedule", ok: ["200", "Schedule"], scope: "read", params: ["name"] }),
        patch: op({ summary: "Pause or resume a schedule", ok: ["200", "Schedule"], scope: "write", params: ["name"] }),
        delete: op({ summary: "Delete a schedule", ok: ["200", null], scope: "write", params: ["name"] }),
      },
    },
  };
}

let cached: ReturnType<typeof buildDocument> | undefined;

export function registerOpenApi(app: Hono<AppEnv>) {
  app.get("/v1/openapi.json", (c) => c.json((cached ??= buildDocument())));
}
