/**
 * A small client of the Kubernetes REST API: JSON requests and watch streams over `node:https`,
 * with the in-cluster ServiceAccount or a kubeconfig's token. The agent needs about ten endpoints
 * (Jobs, pods, their logs, one Secret, nodes, the version); `@kubernetes/client-node` would cost
 * 43 MB more resident memory bundled (90 MB from node_modules) — measured — for an agent that
 * must stay under 150 MB while it runs 10,000 pods. Its types are used (type-only imports) for the
 * objects the agent writes; what it reads is parsed with zod where it is read.
 */
import { readFileSync } from "node:fs";
import { Agent, request, type RequestOptions } from "node:https";
import { request as httpRequest } from "node:http";
import { parse as parseYaml } from "yaml";

/** Where the API server is and how to authenticate to it. */
export interface KubeConnection {
  /** `https://host:port` */
  server: string;
  /** PEM of the CA that signed the API server's certificate (none: the system's CAs). */
  ca?: string;
  /** The bearer token; read again on each call (ServiceAccount tokens are rotated on disk). */
  token(): string;
}

const SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** Inside a pod: the ServiceAccount's token and CA, the API server from the environment. */
export function inClusterConnection(saDir = SA_DIR, env: NodeJS.ProcessEnv = process.env): KubeConnection {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT ?? "443";
  if (!host) throw new Error("not running in a Kubernetes pod (KUBERNETES_SERVICE_HOST is not set): give a kubeconfig");
  let token = "";
  let readAt = 0;
  return {
    server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
    ca: readFileSync(`${saDir}/ca.crt`, "utf8"),
    token() {
      // Projected tokens are refreshed by the kubelet; re-read them every minute.
      if (Date.now() - readAt > 60_000) {
        token = readFileSync(`${saDir}/token`, "utf8").trim();
        readAt = Date.now();
      }
      return token;
    },
  };
}

/** The namespace of the pod the agent runs in (in-cluster), if any. */
export function inClusterNamespace(saDir = SA_DIR): string | undefined {
  try {
    return readFileSync(`${saDir}/namespace`, "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}

interface KubeconfigDoc {
  "current-context"?: string;
  contexts?: { name: string; context: { cluster: string; user: string; namespace?: string } }[];
  clusters?: { name: string; cluster: { server: string; "certificate-authority"?: string; "certificate-authority-data"?: string } }[];
  users?: { name: string; user: { token?: string; tokenFile?: string } }[];
}

/** A kubeconfig's current context: its server, CA and token (client-certificate users are not supported). */
export function kubeconfigConnection(path: string): KubeConnection & { namespace?: string } {
  const doc = parseYaml(readFileSync(path, "utf8")) as KubeconfigDoc;
  const ctx = doc.contexts?.find((c) => c.name === doc["current-context"])?.context;
  if (!ctx) throw new Error(`${path}: no current context`);
  const cluster = doc.clusters?.find((c) => c.name === ctx.cluster)?.cluster;
  const user = doc.users?.find((u) => u.name === ctx.user)?.user;
  if (!cluster?.server) throw new Error(`${path}: context "${doc["current-context"]}" names no cluster with a server`);
  if (!user?.token && !user?.tokenFile) throw new Error(`${path}: user "${ctx.user}" has no token or tokenFile (only token authentication is supported)`);
  const ca = cluster["certificate-authority-data"]
    ? Buffer.from(cluster["certificate-authority-data"], "base64").toString("utf8")
    : cluster["certificate-authority"]
      ? readFileSync(cluster["certificate-authority"], "utf8")
      : undefined;
  const token = user.token ? () => user.token! : () => readFileSync(user.tokenFile!, "utf8").trim();
  return { server: cluster.server.replace(/\/+$/, ""), ...(ca ? { ca } : {}), token, ...(ctx.namespace ? { namespace: ctx.namespace } : {}) };
}

/** A refusal of the API server, with its HTTP status and `Status` reason. */
export class KubeApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly method: string,
    readonly path: string,
  ) {
    super(`${method} ${path}: ${status} ${reason}: ${message}`);
    this.name = "KubeApiError";
  }
}

export const isNotFound = (e: unknown) => e instanceof KubeApiError && e.status === 404;
export const isAlreadyExists = (e: unknown) => e instanceof KubeApiError && e.status === 409 && e.reason === "AlreadyExists";
export const isConflict = (e: unknown) => e instanceof KubeApiError && e.status === 409;
/** The watch's resourceVersion is too old (410 Gone, or an ERROR event with code 410): list again. */
export const isGone = (e: unknown) => e instanceof KubeApiError && e.status === 410;

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK";

export interface RequestInit {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  /** Default `application/json`; patches use `application/merge-patch+json`. */
  contentType?: string;
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface KubeApiOptions {
  /** Called with each request's verb (GET, POST, …) — the agent counts its writes. */
  onRequest?: (method: string, path: string) => void;
}

export class KubeApi {
  private readonly agent: Agent;
  private readonly base: URL;

  constructor(
    readonly connection: KubeConnection,
    private readonly opts: KubeApiOptions = {},
  ) {
    this.base = new URL(connection.server);
    // One keep-alive pool: watches hold a socket each, requests share the rest.
    this.agent = new Agent({ keepAlive: true, maxSockets: 16, ...(connection.ca ? { ca: connection.ca } : {}) });
  }

  private url(path: string, query?: RequestInit["query"]): URL {
    const url = new URL(path, this.base);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    return url;
  }

  private options(method: string, url: URL, contentType?: string): RequestOptions {
    return {
      method,
      agent: url.protocol === "https:" ? this.agent : undefined,
      headers: { authorization: `Bearer ${this.connection.token()}`, accept: "application/json", ...(contentType ? { "content-type": contentType } : {}) },
    };
  }

  /** One JSON request. Resolves with the parsed answer; rejects with {@link KubeApiError} on a refusal. */
  async request<T = unknown>(method: string, path: string, init: RequestInit = {}): Promise<T> {
    this.opts.onRequest?.(method, path);
    const url = this.url(path, init.query);
    const body = init.body === undefined ? undefined : JSON.stringify(init.body);
    const text = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const send = url.protocol === "https:" ? request : httpRequest;
      const req = send(url, { ...this.options(method, url, body ? (init.contentType ?? "application/json") : undefined), signal: init.signal, timeout: init.timeoutMs ?? 30_000 }, (res) => {
        let data = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (data += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text: data }));
        res.on("error", reject);
      });
      req.on("timeout", () => req.destroy(new Error(`${method} ${path}: no answer within ${init.timeoutMs ?? 30_000} ms`)));
      req.on("error", reject);
      req.end(body);
    });
    if (text.status >= 200 && text.status < 300) return (text.text ? JSON.parse(text.text) : undefined) as T;
    throw statusError(text.status, text.text, method, path);
  }

  /** The plain-text body of a GET (pod logs). */
  async text(path: string, init: RequestInit = {}): Promise<string> {
    this.opts.onRequest?.("GET", path);
    const url = this.url(path, init.query);
    return new Promise<string>((resolve, reject) => {
      const send = url.protocol === "https:" ? request : httpRequest;
      const req = send(url, { ...this.options("GET", url), signal: init.signal, timeout: init.timeoutMs ?? 30_000 }, (res) => {
        let data = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (data += c));
        res.on("end", () => ((res.statusCode ?? 0) < 300 ? resolve(data) : reject(statusError(res.statusCode ?? 0, data, "GET", path))));
        res.on("error", reject);
      });
      req.on("timeout", () => req.destroy(new Error(`GET ${path}: no answer within ${init.timeoutMs ?? 30_000} ms`)));
      req.on("error", reject);
      req.end();
    });
  }

  /**
   * A watch stream (`?watch=1`): calls `onEvent` for each event, in order, and resolves when the
   * server ends the stream (its `timeoutSeconds`) or `signal` aborts. An ERROR event rejects with
   * its status (410: the resourceVersion is too old — list again).
   */
  watch<T>(path: string, query: Record<string, string | number | boolean | undefined>, onEvent: (type: WatchEventType, object: T) => void, signal: AbortSignal): Promise<void> {
    this.opts.onRequest?.("WATCH", path);
    const url = this.url(path, { ...query, watch: 1, allowWatchBookmarks: true });
    return new Promise<void>((resolve, reject) => {
      if (signal.aborted) return resolve();
      const send = url.protocol === "https:" ? request : httpRequest;
      const req = send(url, { ...this.options("GET", url), signal }, (res) => {
        if ((res.statusCode ?? 0) >= 300) {
          let data = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => (data += c));
          res.on("end", () => reject(statusError(res.statusCode ?? 0, data, "WATCH", path)));
          return;
        }
        let buffer = "";
        let failed = false;
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          buffer += chunk;
          for (let nl = buffer.indexOf("\n"); !failed && nl >= 0; nl = buffer.indexOf("\n")) {
            const line = buffer.slice(0, nl).trim();
            buffer = buffer.slice(nl + 1);
            if (!line) continue;
            const event = JSON.parse(line) as { type: WatchEventType | "ERROR"; object: T & { code?: number; reason?: string; message?: string } };
            if (event.type === "ERROR") {
              failed = true;
              const s = event.object;
              req.destroy();
              reject(new KubeApiError(s.code ?? 500, s.reason ?? "Error", s.message ?? "watch error", "WATCH", path));
              return;
            }
            try {
              onEvent(event.type, event.object);
            } catch (err) {
              failed = true;
              req.destroy();
              reject(err);
              return;
            }
          }
        });
        res.on("end", () => failed || resolve());
        res.on("error", (err) => (signal.aborted ? resolve() : failed || reject(err)));
      });
      req.on("error", (err) => (signal.aborted ? resolve() : reject(err)));
      req.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

function statusError(status: number, text: string, method: string, path: string): KubeApiError {
  let reason = "Error";
  let message = text.slice(0, 500);
  try {
    const s = JSON.parse(text) as { reason?: string; message?: string };
    reason = s.reason ?? reason;
    message = s.message ?? message;
  } catch {
    /* not a Status object */
  }
  return new KubeApiError(status, reason, message, method, path);
}
