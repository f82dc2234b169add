/**
 * The embedded default's cluster and agent: the cluster `local` (created on first use), and an
 * agent process registered with a bootstrap token only when it has no stored credentials yet.
 * Used by `npm run demo` and `npm run dev`.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { z } from "zod";
import { ClusterCreated } from "../../proto/api";
import type { ErrorBody } from "../../proto/errors";
import { startAgent, type AgentProcess } from "./agent";
import type { Embedded } from "./embedded";

export async function startLocalAgent(env: Embedded, opts: { stateDir: string; projectsRoot: string; extraArgs?: string[]; env?: Record<string, string> }): Promise<AgentProcess> {
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(env.control.url + path, {
      method,
      headers: { authorization: `Bearer ${env.adminToken}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json: unknown = await res.json();
    return { status: res.status, body: json };
  };
  /** A call that must succeed: its answer, read with the route's response schema (proto/api). */
  const must = async <T>(schema: z.ZodType<T>, method: string, path: string, body?: unknown): Promise<T> => {
    const r = await call(method, path, body);
    if (r.status >= 300) throw new Error(`${method} ${path} → ${r.status}: ${JSON.stringify((r.body as Partial<ErrorBody>).error)}`);
    return schema.parse(r.body);
  };
  let bootstrap: string | undefined;
  const existing = await call("GET", "/v1/clusters/local");
  if (existing.status === 404) bootstrap = (await must(ClusterCreated, "POST", "/v1/clusters", { name: "local", kind: "local", labels: { embedded: "true" } })).bootstrap.token;
  else if (!existsSync(join(opts.stateDir, "credentials.json"))) bootstrap = (await must(ClusterCreated, "POST", "/v1/clusters/local/bootstrap")).bootstrap.token;
  return startAgent({
    controlPlaneUrl: env.control.url,
    mlflowUrl: env.mlflow.url,
    stateDir: opts.stateDir,
    projectsRoot: opts.projectsRoot,
    bootstrapToken: bootstrap,
    pythonBinDir: env.mlflow.binDir,
    ...(opts.extraArgs ? { extraArgs: opts.extraArgs } : {}),
    ...(opts.env ? { env: opts.env } : {}),
  });
}
