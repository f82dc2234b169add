/**
 * The MLflow client of the agent and of its pod programs, with MLflow's own environment
 * variables for credentials (`MLFLOW_TRACKING_TOKEN`, or `MLFLOW_TRACKING_USERNAME` and
 * `MLFLOW_TRACKING_PASSWORD`) and timeout (`MLFLOW_HTTP_REQUEST_TIMEOUT`, seconds), as `mlflow`
 * reads them.
 */
import { MlflowClient } from "../../proto/mlflow";

export function mlflowClient(trackingUri: string, env: NodeJS.ProcessEnv = process.env): MlflowClient {
  const timeout = Number(env.MLFLOW_HTTP_REQUEST_TIMEOUT);
  return new MlflowClient({
    trackingUri,
    ...(env.MLFLOW_TRACKING_TOKEN ? { token: env.MLFLOW_TRACKING_TOKEN } : {}),
    ...(env.MLFLOW_TRACKING_USERNAME ? { username: env.MLFLOW_TRACKING_USERNAME, password: env.MLFLOW_TRACKING_PASSWORD ?? "" } : {}),
    ...(Number.isFinite(timeout) && timeout > 0 ? { timeoutMs: timeout * 1000 } : {}),
  });
}
