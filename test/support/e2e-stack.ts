/**
 * The embedded default as the end-to-end tests start it, in one place: nats-server, `mlflow
 * server` and the control plane (`startEmbedded`), a cluster `local` made through the API, and a
 * local-executor agent registered with its bootstrap token, online before the test goes on.
 * Each test keeps what is its own: its projects, the agent's flags and environment.
 */
import { join } from "node:path";
import { MlflowClient } from "../../proto/mlflow";
import { type AgentProcess, startAgent } from "../../scripts/local/agent";
import { type Embedded, type EmbeddedOptions, startEmbedded } from "../../scripts/local/embedded";
import { e2eApi, waitFor } from "./e2e-api";

export interface LocalStack {
  env: Embedded;
  mlflow: MlflowClient;
  agent: AgentProcess;
  /** The cluster's bootstrap token (an agent started again with it registers as the same cluster). */
  bootstrapToken: string;
}

export interface LocalStackOptions extends Pick<EmbeddedOptions, "stateDir" | "adminToken" | "cronTriggers"> {
  /** Where the agent resolves the DAG's local project paths. */
  projectsRoot: string;
  /** More agent flags, after `--pull-expires-seconds 5` (a stopped agent's pull ends soon). */
  agentArgs?: string[];
  agentEnv?: Record<string, string>;
}

export async function startLocalStack(o: LocalStackOptions): Promise<LocalStack> {
  const env = await startEmbedded({ stateDir: o.stateDir, adminToken: o.adminToken, ports: "free", ...(o.cronTriggers === undefined ? {} : { cronTriggers: o.cronTriggers }) });
  try {
    const api = e2eApi({ url: () => env.control.url, token: o.adminToken });
    const cluster = await api.call("POST", "/v1/clusters", { name: "local", kind: "local" });
    if (cluster.status !== 201) throw new Error(`POST /v1/clusters answered ${cluster.status}: ${JSON.stringify(cluster.body)}`);
    const bootstrapToken = cluster.body.bootstrap.token as string;
    const agent = await startAgent({
      controlPlaneUrl: env.control.url,
      mlflowUrl: env.mlflow.url,
      stateDir: join(o.stateDir, "agent"),
      projectsRoot: o.projectsRoot,
      pythonBinDir: env.mlflow.binDir,
      extraArgs: ["--pull-expires-seconds", "5", ...(o.agentArgs ?? [])],
      ...(o.agentEnv ? { env: o.agentEnv } : {}),
      bootstrapToken,
    });
    await waitFor("the agent to register", async () => (await api.call("GET", "/v1/clusters/local")).body.status === "online", {
      timeoutMs: 60_000,
      explain: () => `agent log: ${agent.logFile}`,
    });
    return { env, mlflow: new MlflowClient({ trackingUri: env.mlflow.url }), agent, bootstrapToken };
  } catch (e) {
    await env.stop();
    throw e;
  }
}
