/**
 * GET /v1/openapi.json — written from the route table (define.ts): every operation's parameters,
 * body and answers come from the zod schemas its handler validates with and answers by, and its
 * error statuses from the error codes it declares. Built once per isolate.
 *
 * The schemas are converted by zod's own JSON Schema generator (`z.toJSONSchema`), which keeps
 * every constraint zod can state (bounds, patterns, record key rules) and tells a request's shape
 * (`io: "input"`: a field with a default may be left out) from an answer's (`io: "output"`).
 */
import { z } from "zod";
import * as agent from "../../../proto/agent";
import * as api from "../../../proto/api";
import { DagSchema } from "../../../proto/dag";
import { ErrorBodySchema, STATUS_OF, type ErrorCode } from "../../../proto/errors";
import { errorsOf, route, type Route, type RouteDef } from "./define";

/** Names of the request bodies, as components (input form). */
const REQUEST_SCHEMAS: [z.ZodType, string][] = [
  [DagSchema, "Dag"],
  [api.WorkspaceCreate, "WorkspaceCreate"],
  [api.TokenCreate, "TokenCreate"],
  [api.ClusterCreate, "ClusterCreate"],
  [api.RunSubmit, "RunSubmit"],
  [api.RunResume, "RunResume"],
  [api.ScheduleCreate, "ScheduleCreate"],
  [api.ScheduleUpdate, "ScheduleUpdate"],
  [agent.AgentRegister, "AgentRegister"],
  [agent.Heartbeat, "Heartbeat"],
  [agent.EventBatch, "EventBatch"],
  [agent.CacheLookup, "CacheLookup"],
];

const OpenApiDocument = z.looseObject({ openapi: z.string(), info: z.looseObject({ title: z.string(), version: z.string() }), paths: z.record(z.string(), z.unknown()) });

/** Names of the answers' schemas, as components (output form: defaults filled in). */
const RESPONSE_SCHEMAS: [z.ZodType, string][] = [
  [ErrorBodySchema, "Error"],
  [DagSchema, "DagSpec"],
  [api.WorkspaceCreated, "WorkspaceCreated"],
  [api.WhoAmI, "WhoAmI"],
  [api.TokenView, "Token"],
  [api.TokenCreated, "TokenCreated"],
  [api.TokenPage, "TokenPage"],
  [api.ClusterView, "Cluster"],
  [api.ClusterCreated, "ClusterCreated"],
  [api.ClusterDeleted, "ClusterDeleted"],
  [api.ClusterPage, "ClusterPage"],
  [api.DagView, "DagView"],
  [api.DagSummary, "DagSummary"],
  [api.DagPage, "DagPage"],
  [api.DagVersionSummary, "DagVersionSummary"],
  [api.DagVersionPage, "DagVersionPage"],
  [api.DagValidation, "DagValidation"],
  [api.RunView, "Run"],
  [api.RunPage, "RunPage"],
  [api.NodeRunDetail, "NodeRun"],
  [api.ReusedFrom, "ReusedFrom"],
  [api.ScheduleView, "Schedule"],
  [api.SchedulePage, "SchedulePage"],
  [api.Deleted, "Deleted"],
  [api.Health, "Health"],
  [agent.AgentRegistered, "AgentRegistered"],
  [agent.HeartbeatAnswer, "HeartbeatAnswer"],
  [agent.EventBatchResult, "EventBatchResult"],
  [agent.CacheLookupAnswer, "CacheLookupAnswer"],
  [OpenApiDocument, "OpenApiDocument"],
];

/** What each error code means, for the descriptions of the answers. */
const ERROR_MEANING: Record<ErrorCode, string> = {
  malformed_body: "the body is empty, or not JSON (nor YAML with a YAML Content-Type); the message gives line and column",
  invalid_request: "the query, headers or body do not fit the schema; `details` lists every problem with its path",
  unauthenticated: "missing, malformed, unknown or revoked credentials",
  forbidden: "the credentials do not allow this",
  not_found: "not found (in the token's workspace)",
  method_not_allowed: "the path does not have this method; `Allow` lists those it has",
  conflict: "conflicts with the current state (taken name, work still running, a key already used)",
  payload_too_large: "the body is larger than 1 MiB",
  unsupported_media_type: "the body is neither JSON nor YAML (by Content-Type; none means JSON)",
  invalid_dag: "the DAG (or the request's use of it) cannot be accepted; `details` lists every problem with its path",
  unavailable: "a dependency (NATS) is not reachable or not configured; retry later",
  internal: "internal error",
};

const ref = (id: string) => ({ $ref: `#/components/schemas/${id}` });
const AUTH_TEXT: Record<RouteDef["auth"], string> = {
  read: "Needs a token with the `read` scope (or stronger).",
  write: "Needs a token with the `write` scope (or stronger).",
  admin: "Needs a token with the `admin` scope.",
  root: "Needs the PARALLELS_ADMIN_TOKEN secret itself.",
  agent: "Needs the agent credential returned by registration.",
  bootstrap: "Authenticated by the cluster's bootstrap token in the body.",
  public: "Needs no credentials.",
};

/** The named schemas in one form, converted together so that they refer to each other by $ref. */
function components(io: "input" | "output", named: [z.ZodType, string][]): Record<string, object> {
  const registry = z.registry<{ id: string }>();
  for (const [schema, id] of named) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, { io, target: "draft-2020-12", unrepresentable: "any", uri: (id) => `#/components/schemas/${id}` });
  // Everything reused is either named or inlined; anything zod had to share otherwise would be
  // an unresolvable reference in the document.
  if ("__shared" in schemas) throw new Error("a schema is shared without a name: add it to REQUEST_SCHEMAS or RESPONSE_SCHEMAS");
  // `$id` and `$schema` belong to standalone JSON Schema documents, not to OpenAPI components.
  return Object.fromEntries(Object.entries(schemas).map(([id, { $id: _id, $schema: _schema, ...schema }]) => [id, schema]));
}

function nameOf(table: [z.ZodType, string][], schema: z.ZodType, where: string): string {
  const found = table.find(([s]) => s === schema);
  if (!found) throw new Error(`the schema of ${where} has no component name: add it to ${table === REQUEST_SCHEMAS ? "REQUEST_SCHEMAS" : "RESPONSE_SCHEMAS"}`);
  return found[1];
}

function parameters(def: RouteDef) {
  const out: object[] = [...def.path.matchAll(/\{(\w+)\}/g)].map(([, name]) => ({ name, in: "path", required: true, schema: { type: "string" } }));
  for (const [where, schema] of [
    ["query", def.query],
    ["header", def.headers],
  ] as const) {
    if (!schema) continue;
    const json = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as { properties?: Record<string, { description?: string }>; required?: string[] };
    for (const [name, { description, ...property }] of Object.entries(json.properties ?? {})) {
      out.push({ name, in: where, required: json.required?.includes(name) ?? false, ...(description ? { description } : {}), schema: property });
    }
  }
  return out;
}

function operation(def: RouteDef) {
  const where = `${def.method.toUpperCase()} ${def.path}`;
  const json = (schema: object) => ({ "application/json": { schema } });
  const responses: Record<string, object> = {};
  for (const [status, ok] of Object.entries(def.ok)) {
    const content = ok.contentType ? { [ok.contentType.split(";")[0]!]: { schema: { type: "string" } } } : json(ref(nameOf(RESPONSE_SCHEMAS, ok.schema, `${where} ${status}`)));
    responses[status] = { description: ok.description, content };
  }
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of errorsOf(def)) byStatus.set(STATUS_OF[code], [...(byStatus.get(STATUS_OF[code]) ?? []), code]);
  for (const [status, codes] of [...byStatus].sort(([a], [b]) => a - b)) {
    responses[status] = { description: codes.map((c) => `\`${c}\`: ${ERROR_MEANING[c]}`).join("; "), content: json(ref("Error")) };
  }
  const body = def.body && ref(nameOf(REQUEST_SCHEMAS, def.body.schema, `${where} body`));
  const params = parameters(def);
  return {
    summary: def.summary,
    description: [AUTH_TEXT[def.auth], def.description].filter(Boolean).join(" "),
    ...(def.auth === "public" || def.auth === "bootstrap" ? { security: [] } : def.auth === "agent" ? { security: [{ agentCredential: [] }] } : {}),
    ...(params.length > 0 ? { parameters: params } : {}),
    // YAML is read wherever JSON is (body.ts): it is the same document.
    ...(body ? { requestBody: { required: def.body?.optional !== true, content: { ...json(body), "application/yaml": { schema: body } } } } : {}),
    responses,
  };
}

export function buildDocument(routes: readonly Route[]): z.output<typeof OpenApiDocument> {
  const paths: Record<string, Record<string, object>> = {};
  for (const { def } of routes) {
    const operations = paths[def.path] ?? {};
    operations[def.method] = operation(def);
    paths[def.path] = operations;
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "MLflow Parallels control plane",
      version: "1",
      description: "Every error answers `{error: {code, message, details}}`. A known path asked with a method it does not have answers 405 with `Allow`; an unknown path, 404.",
    },
    components: {
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", description: "An API token, or the PARALLELS_ADMIN_TOKEN secret." },
        agentCredential: { type: "http", scheme: "bearer", description: "The agent credential returned by POST /v1/agent/register." },
      },
      schemas: { ...components("input", REQUEST_SCHEMAS), ...components("output", RESPONSE_SCHEMAS) },
    },
    security: [{ bearer: [] }],
    paths,
  };
}

/** The document's own route; `routes` is the whole table, this route included. */
export function openApiRoute(routes: () => readonly Route[]): Route {
  let cached: z.output<typeof OpenApiDocument> | undefined;
  return route({
    method: "get",
    path: "/v1/openapi.json",
    summary: "This OpenAPI document",
    auth: "public",
    ok: { 200: { description: "the OpenAPI 3.1 document of this API", schema: OpenApiDocument } },
  }).handle(async () => {
    cached ??= buildDocument(routes());
    return { status: 200, body: cached };
  });
}
