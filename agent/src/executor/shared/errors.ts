/**
 * @module
 * The two ways an attempt can fail to start:
 * - {@link AttemptFailure}: the work itself is wrong (bad parameter, missing project, unknown
 *   input) — the attempt is reported `failed` with this message and `start` resolves, so the
 *   message is acked and never redelivered;
 * - {@link RetryableStartError}: the world is not ready (MLflow unreachable, executor closed) —
 *   `start` rejects with it and the core lets NATS redeliver; the attempt's record is kept, so
 *   the next `start` picks up where this one stopped.
 * {@link asFailure} tells the first from trouble worth retrying.
 */
import { isMlflowApiError, isMlflowClientError, isRetryable } from "../../../../proto/mlflow";

const BRAND = Symbol.for("mlflow-parallels.executor.retryable");

export class AttemptFailure extends Error {
  override name = "AttemptFailure";
  readonly retryable = false;
}

export class RetryableStartError extends Error {
  override name = "RetryableStartError";
  readonly retryable = true;
  readonly [BRAND] = true;
}

/** True for a rejection of `start` that NATS should redeliver. */
export function isRetryableStartError(e: unknown): e is RetryableStartError {
  return typeof e === "object" && e !== null && (e as Record<symbol, unknown>)[BRAND] === true;
}

/** A deterministic failure (report `failed`), or undefined for trouble worth retrying. */
export function asFailure(e: unknown): AttemptFailure | undefined {
  if (e instanceof AttemptFailure) return e;
  if (isMlflowClientError(e) && e.code !== "BAD_RESPONSE") return new AttemptFailure(e.message, { cause: e });
  if (isMlflowApiError(e) && !isRetryable(e)) return new AttemptFailure(`MLflow refused: ${e.message}`, { cause: e });
  return undefined;
}

export function errMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
