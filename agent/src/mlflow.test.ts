import { describe, expect, it } from "vitest";
import { mlflowClient, mlflowEndpoint } from "./mlflow";

describe("the agent's MLflow client", () => {
  it("names each request by its endpoint, a bounded set (the metric's label)", () => {
    expect(mlflowEndpoint("http://m:5000/api/2.0/mlflow/runs/search")).toBe("runs/search");
    expect(mlflowEndpoint("http://m:5000/prefix/api/2.0/mlflow/experiments/get-by-name?experiment_name=x")).toBe("experiments/get-by-name");
    expect(mlflowEndpoint("http://m:5000/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/parallels/manifest.json")).toBe("artifacts");
    expect(mlflowEndpoint("http://m:5000/health")).toBe("other");
  });

  it("tells onRequest of every request it sends", async () => {
    const seen: string[] = [];
    const realFetch = globalThis.fetch;
    globalThis.fetch = (async () =>
      new Response(
        JSON.stringify({ run: { info: { run_id: "r", experiment_id: "1", status: "RUNNING", start_time: 1, artifact_uri: "mlflow-artifacts:/1/r/artifacts", lifecycle_stage: "active" }, data: {} } }),
        { headers: { "content-type": "application/json" } },
      )) as typeof fetch;
    try {
      await mlflowClient("http://127.0.0.1:9", {}, (e) => seen.push(e)).getRun("r");
    } finally {
      globalThis.fetch = realFetch;
    }
    expect(seen).toEqual(["runs/get"]);
  });
});
