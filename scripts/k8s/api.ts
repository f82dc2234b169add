/**
 * A plain HTTPS request to a harness cluster's apiserver from this Node process, CA-verified,
 * with a bearer token (the admin's by default, or e.g. a ServiceAccount's from the TokenRequest
 * API). Only for a cluster on the host's loopback: a cluster inside a network namespace is
 * reached through `cluster.kubectl` instead.
 */
import { readFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";

export interface ApiRequest {
  method?: string;
  /** An object is sent as JSON; a string as is (set `contentType`). */
  body?: unknown;
  contentType?: string;
  /** Bearer token; default the cluster's admin token. */
  token?: string;
  timeoutMs?: number;
}

export interface ApiResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** The body parsed as JSON (throws if it is not). */
  json<T = unknown>(): T;
}

export function apiRequest(target: { apiUrl: string; caFile: string; adminToken: string }, path: string, req: ApiRequest = {}): Promise<ApiResponse> {
  const url = new URL(path, target.apiUrl);
  const body = req.body === undefined ? undefined : typeof req.body === "string" ? req.body : JSON.stringify(req.body);
  const headers: Record<string, string> = { authorization: `Bearer ${req.token ?? target.adminToken}`, accept: "application/json, */*" };
  if (body !== undefined) headers["content-type"] = req.contentType ?? "application/json";
  return new Promise((resolve, reject) => {
    const r = httpsRequest(url, { method: req.method ?? (body === undefined ? "GET" : "POST"), headers, ca: readFileSync(target.caFile), timeout: req.timeoutMs ?? 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: <T>() => JSON.parse(text) as T });
      });
    });
    r.on("timeout", () => r.destroy(new Error(`${req.method ?? "GET"} ${path}: no answer in ${req.timeoutMs ?? 30_000} ms`)));
    r.on("error", reject);
    r.end(body);
  });
}
