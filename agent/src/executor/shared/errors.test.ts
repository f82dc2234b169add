// Which failures of an attempt's start are the work's (reported failed) and which are worth a redelivery.
import { describe, expect, it } from "vitest";
import { apiErrorFromBody } from "../../../../proto/mlflow/errors";
import { asFailure } from "./errors";

const mlflow400 = (message: string) => apiErrorFromBody(400, JSON.stringify({ error_code: "BAD_REQUEST", message }), "POST", "/api/2.0/mlflow/runs/log-batch");

describe("asFailure", () => {
  it("fails the attempt on MLflow's refusal of the request", () => {
    expect(asFailure(mlflow400("Invalid value for param"))?.message).toMatch(/^MLflow refused: /);
  });

  it("leaves MLflow's full connection pool (HTTP 400 from an overloaded server) to a redelivery", () => {
    // Seen with 60 runs at once on a loaded machine: three runs failed for good before this.
    expect(asFailure(mlflow400("QueuePool limit of size 5 overflow 10 reached, connection timed out, timeout 30.00 (Background on this error at: https://sqlalche.me/e/21/3o7r)"))).toBeUndefined();
  });
});
