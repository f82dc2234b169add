/**
 * The route table. Each endpoint is one definition: method, path, who may call it, the zod schemas
 * of its query, headers and body, and every status it answers with the schema of that answer.
 * The same definition registers the Hono handler (whose input is validated with those schemas and
 * whose answer is typed by them) and writes the endpoint's part of the OpenAPI document
 * (openapi.ts), so the document cannot drift from what the API does.
 *
 * Validation stays ours (body.ts), not a generic validator's: JSON or YAML by Content-Type (none
 * means JSON), 415 for anything else, syntax errors with line and column, every problem with its
 * path, and DAGs refused with 422 by their own validation.
 */
import type { Context, Hono, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { z } from "zod";
import type { Scope } from "../../../proto/api";
import { MAX_DAG_BYTES } from "../../../proto/dag";
import { STATUS_OF, type ErrorCode } from "../../../proto/errors";
import { authenticate, requireRoot, requireScope } from "../auth";
import { readDocument, validate } from "../body";
import type { AppEnv } from "../env";
import { ApiError, errorBody } from "../errors";
import { authenticateAgent } from "./agent-auth";

export type Method = "get" | "post" | "put" | "patch" | "delete";

/**
 * Who may call: a user token with at least that scope; `root`, only the PARALLELS_ADMIN_TOKEN
 * secret; `agent`, an agent credential; `bootstrap`, a cluster's bootstrap token carried in the
 * body (checked by the handler); `public`, anyone.
 */
export type Auth = Scope | "root" | "agent" | "bootstrap" | "public";

/** A JSON body, or YAML with a YAML Content-Type (body.ts). */
export interface BodyDef {
  schema: z.ZodType;
  /**
   * Turns the parsed document into the handler's input, throwing ApiError when it cannot be
   * accepted (the DAGs' 422). Default: validate with `schema` (400 `invalid_request`).
   */
  accept?: (doc: unknown) => unknown;
  /** The body may be left out (no content at all): it is then read as `{}`. */
  optional?: boolean;
}

export interface Success {
  description: string;
  schema: z.ZodType;
  /** The answer's media type when it is not JSON (a log is `text/plain`; the body is then a string). */
  contentType?: "text/plain; charset=utf-8";
}

export interface RouteDef {
  method: Method;
  /** As OpenAPI writes it: `/v1/dags/{name}`. Path parameters are strings. */
  path: string;
  summary: string;
  description?: string;
  auth: Auth;
  query?: z.ZodObject;
  /** Request headers the endpoint reads, by their canonical name (`Idempotency-Key`). */
  headers?: z.ZodObject;
  body?: BodyDef;
  /** The success statuses and their bodies. */
  ok: { readonly [status: number]: Success };
  /** Error codes the handler may answer with, beyond those `impliedErrors` derives. */
  errors?: readonly ErrorCode[];
}

type PathParams<P extends string> = P extends `${string}{${infer K}}${infer Rest}` ? K | PathParams<Rest> : never;
type Out<S> = S extends z.ZodType ? z.output<S> : undefined;

/** What a handler gets: the path parameters and the validated query, headers and body. */
export interface Input<D extends RouteDef> {
  params: Record<PathParams<D["path"]>, string>;
  query: Out<D["query"]>;
  headers: Out<D["headers"]>;
  body: D["body"] extends { accept: (doc: unknown) => infer T } ? T : D["body"] extends { schema: infer S } ? Out<S> : undefined;
}

/** What a handler answers: one of the route's success statuses, with a body of its schema. */
export type Answer<D extends RouteDef> = {
  [S in keyof D["ok"]]: { status: S; body: D["ok"][S] extends { schema: infer T extends z.ZodType } ? z.output<T> : never; headers?: Record<string, string> };
}[keyof D["ok"]];

export interface Route {
  def: RouteDef;
  handler: (c: Context<AppEnv>) => Promise<Response>;
}

/**
 * `route(definition).handle(handler)`: two steps, so that the definition's types are fixed before
 * the handler is checked against them (its answer's status stays the literal 201, not a number).
 */
export function route<const D extends RouteDef>(def: D) {
  return {
    handle: (handler: (c: Context<AppEnv>, input: Input<D>) => Promise<Answer<D>>): Route => ({
      def,
      handler: async (c) => {
        const answer = await handler(c, (await readInput(c, def)) as Input<D>);
        const contentType = def.ok[answer.status as number]?.contentType;
        if (contentType) return c.body(answer.body as string, answer.status as ContentfulStatusCode, { ...answer.headers, "content-type": contentType });
        return c.json(answer.body, answer.status as ContentfulStatusCode, answer.headers);
      },
    }),
  };
}

async function readInput(c: Context<AppEnv>, def: RouteDef) {
  const query = def.query ? validate(def.query, c.req.query(), "query string") : undefined;
  const headers = def.headers ? validate(def.headers, declaredHeaders(c, def.headers), "request headers") : undefined;
  let body: unknown;
  if (def.body) {
    const doc = await readDocument(c, def.body.optional === true);
    body = def.body.accept ? def.body.accept(doc) : validate(def.body.schema, doc);
  }
  return { params: c.req.param(), query, headers, body };
}

/** Only the headers the route declares, by their canonical names (Hono looks them up case-insensitively). */
function declaredHeaders(c: Context, schema: z.ZodObject): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of Object.keys(schema.shape)) {
    const value = c.req.header(name);
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/** The error codes that follow from the definition itself: its auth, and what it reads. */
export function impliedErrors(def: RouteDef): ErrorCode[] {
  const codes: ErrorCode[] = [];
  if (def.auth !== "public" && def.auth !== "bootstrap") codes.push("unauthenticated");
  // `read` is the weakest scope: every token has it.
  if (def.auth === "write" || def.auth === "admin" || def.auth === "root") codes.push("forbidden");
  if (def.query || def.headers || (def.body && !def.body.accept)) codes.push("invalid_request");
  if (def.body) codes.push("malformed_body", "payload_too_large", "unsupported_media_type");
  return codes;
}

/** Every error code the route may answer with. */
export const errorsOf = (def: RouteDef): ErrorCode[] => [...new Set([...impliedErrors(def), ...(def.errors ?? [])])];

function authMiddleware(auth: Auth): MiddlewareHandler<AppEnv>[] {
  switch (auth) {
    case "public":
    case "bootstrap":
      return [];
    case "agent":
      return [authenticateAgent];
    case "root":
      return [authenticate, requireRoot];
    default:
      return [authenticate, requireScope(auth)];
  }
}

const bodySizeLimit = bodyLimit({
  maxSize: MAX_DAG_BYTES,
  onError: () => {
    throw new ApiError("payload_too_large", `the request body is larger than ${MAX_DAG_BYTES} bytes (1 MiB)`);
  },
});

/** `/v1/dags/{name}` → Hono's `/v1/dags/:name`. */
const honoPath = (path: string) => path.replace(/\{(\w+)\}/g, ":$1");

export function registerRoutes(app: Hono<AppEnv>, routes: readonly Route[]): void {
  app.use("*", methodNotAllowed(routes));
  for (const { def, handler } of routes) {
    // On a route that reads a body the size limit comes first: an oversized body is refused
    // before anything else (the token too) is looked at.
    const handlers: MiddlewareHandler<AppEnv>[] = [...(def.body ? [bodySizeLimit] : []), ...authMiddleware(def.auth), handler];
    app.on([def.method.toUpperCase()], [honoPath(def.path)], ...handlers);
  }
}

/**
 * 405 with an `Allow` header for a known path asked with a method it does not have (404 stays for
 * unknown paths). It runs before authentication: the paths and their methods are public anyway,
 * in the OpenAPI document. HEAD is answered wherever GET is (Hono serves it from the GET route);
 * OPTIONS is CORS's, answered before this.
 */
function methodNotAllowed(routes: readonly Route[]): MiddlewareHandler<AppEnv> {
  const paths = new Map<string, { pattern: RegExp; methods: Set<string> }>();
  for (const { def } of routes) {
    const entry = paths.get(def.path) ?? { pattern: pathPattern(def.path), methods: new Set<string>() };
    entry.methods.add(def.method.toUpperCase());
    paths.set(def.path, entry);
  }
  const known = [...paths.values()];
  return async (c, next) => {
    const method = c.req.method === "HEAD" ? "GET" : c.req.method;
    if (method === "OPTIONS") return next();
    const methods = new Set(known.filter((p) => p.pattern.test(c.req.path)).flatMap((p) => [...p.methods]));
    if (methods.size === 0 || methods.has(method)) return next();
    const allow = [...methods, ...(methods.has("GET") ? ["HEAD"] : []), "OPTIONS"].join(", ");
    const message = `${c.req.path} does not answer ${c.req.method}; it answers ${allow}`;
    return c.json(errorBody("method_not_allowed", message), STATUS_OF.method_not_allowed as 405, { Allow: allow });
  };
}

/** The request paths an OpenAPI path matches, as Hono matches them (a parameter is one segment). */
export function pathPattern(path: string): RegExp {
  const source = path
    .split(/(\{\w+\})/)
    .map((part) => (/^\{\w+\}$/.test(part) ? "[^/]+" : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
    .join("");
  return new RegExp(`^${source}$`);
}
