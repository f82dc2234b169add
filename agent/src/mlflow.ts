/**
 * The MLflow client of the agent and of its pod programs, with MLflow's own environment
 * variables for credentials (`MLFLOW_TRACKING_TOKEN`, or `MLFLOW_TRACKING_USERNAME` and
 * `MLFLOW_TRACKING_PASSWORD`) and timeout (`MLFLOW_HTTP_REQUEST_TIMEOUT`, seconds), as `mlflow`
 * reads them.
 */
import { MlflowClient } from "../../proto/mlflow";

/**
 * `onRequest` is told the endpoint of every request (`runs/create`, `runs/search`…; `artifacts`
 * for the artifact proxy) — the agent's metrics count them.
 */
export function mlflowClient(trackingUri: string, env: NodeJS.ProcessEnv = process.env, onRequest?: (endpoint: string) => void): MlflowClient {
  const timeout = Number(env.MLFLOW_HTTP_REQUEST_TIMEOUT);
  return new MlflowClient({
    trackingUri,
    ...(env.MLFLOW_TRACKING_TOKEN ? { token: env.MLFLOW_TRACKING_TOKEN } : {}),
    ...(env.MLFLOW_TRACKING_USERNAME ? { username: env.MLFLOW_TRACKING_USERNAME, password: env.MLFLOW_TRACKING_PASSWORD ?? "" } : {}),
    ...(Number.isFinite(timeout) && timeout > 0 ? { timeoutMs: timeout * 1000 } : {}),
    ...(onRequest
      ? {
          fetch: (input: string, init?: RequestInit) => {
            onRequest(mlflowEndpoint(input));
            return fetch(input, init);
          },
        }
      : {}),
  });
}

/** `…/api/2.0/mlflow/runs/create?…` → `runs/create`; the artifact proxy → `artifacts`. A bounded set of names. */
export function mlflowEndpoint(url: string): string {
  const path = new URL(url).pathname;
  if (path.includes("/api/2.0/mlflow-artifacts/")) return "artifacts";
  const m = /\/api\/2\.0\/mlflow\/([a-z-]+(?:\/[a-z-]+)?)/.exec(path);
  return m ? m[1]! : "other";
}
