/**
 * @module
 * Errors of the MLflow client. Three kinds, one base:
 * - {@link MlflowApiError}: the server (or a proxy in front of it) answered with an error status;
 *   `errorCode` is MLflow's `error_code` (`RESOURCE_DOES_NOT_EXIST`, …) or, for a bare HTTP error
 *   without an MLflow body, the code the Python client would map the status to.
 * - {@link MlflowNetworkError}: no answer at all (connection refused, reset, timeout).
 * - {@link MlflowClientError}: refused before sending (bad argument, conflicting duplicate params,
 *   an artifact root the tracking server does not proxy, a deleted experiment), or an answer the
 *   client cannot read (`BAD_RESPONSE`: not JSON, or not the shape of the endpoint's answer).
 *
 * Guards use a `Symbol.for` brand, so they work across duplicated copies of this module.
 *
 * @example
 * ```ts
 * try { await client.getRun(id) } catch (e) {
 *   if (isResourceDoesNotExist(e)) return undefined;
 *   throw e;
 * }
 * ```
 */

/** MLflow `error_code` values (mlflow/protos/databricks.proto) that clients switch on. */
export const MLFLOW_ERROR_CODES = [
  "INTERNAL_ERROR",
  "TEMPORARILY_UNAVAILABLE",
  "BAD_REQUEST",
  "INVALID_PARAMETER_VALUE",
  "ENDPOINT_NOT_FOUND",
  "NOT_FOUND",
  "RESOURCE_DOES_NOT_EXIST",
  "RESOURCE_ALREADY_EXISTS",
  "RESOURCE_CONFLICT",
  "ALREADY_EXISTS",
  "ABORTED",
  "INVALID_STATE",
  "PERMISSION_DENIED",
  "UNAUTHENTICATED",
  "CUSTOMER_UNAUTHORIZED",
  "REQUEST_LIMIT_EXCEEDED",
  "RESOURCE_EXHAUSTED",
  "NOT_IMPLEMENTED",
  "DEADLINE_EXCEEDED",
  "CANCELLED",
  "DATA_LOSS",
] as const;
/** A known MLflow error code, or any other string a server may send. */
export type MlflowErrorCode = (typeof MLFLOW_ERROR_CODES)[number] | (string & {});

const BRAND = Symbol.for("mlflow-parallels.mlflow.error");

/** Base of every error thrown by the MLflow client. */
export class MlflowError extends Error {
  override name = "MlflowError";
  readonly [BRAND] = true;
}

export interface MlflowApiErrorDetails {
  status: number;
  errorCode: MlflowErrorCode;
  /** The server's own message (`message` of the error body, or the start of a non-JSON body). */
  serverMessage: string;
  method: string;
  /** Path of the request below the tracking URI, e.g. `/api/2.0/mlflow/runs/get`. */
  endpoint: string;
  /** The parsed error body, when it was JSON. */
  body?: unknown;
}

/** The server answered with an HTTP error status. */
export class MlflowApiError extends MlflowError {
  override name = "MlflowApiError";
  readonly status: number;
  readonly errorCode: MlflowErrorCode;
  readonly serverMessage: string;
  readonly method: string;
  readonly endpoint: string;
  readonly body: unknown;

  constructor(d: MlflowApiErrorDetails) {
    super(`MLflow ${d.method} ${d.endpoint} failed with HTTP ${d.status} ${d.errorCode}: ${d.serverMessage}`);
    this.status = d.status;
    this.errorCode = d.errorCode;
    this.serverMessage = d.serverMessage;
    this.method = d.method;
    this.endpoint = d.endpoint;
    this.body = d.body;
  }
}

/** The request got no HTTP answer (connection refused or reset, DNS, timeout). */
export class MlflowNetworkError extends MlflowError {
  override name = "MlflowNetworkError";
  readonly method: string;
  readonly endpoint: string;
  /** True when the request was aborted by the client's own timeout. */
  readonly timedOut: boolean;

  constructor(method: string, endpoint: string, cause: unknown, timedOut: boolean) {
    const reason = timedOut ? "timed out" : cause instanceof Error ? cause.message : String(cause);
    super(`MLflow ${method} ${endpoint}: no answer from the tracking server (${reason})`, { cause });
    this.method = method;
    this.endpoint = endpoint;
    this.timedOut = timedOut;
  }
}

export type MlflowClientErrorCode = "INVALID_ARGUMENT" | "DUPLICATE_PARAM" | "VALUE_TOO_LONG" | "EXPERIMENT_DELETED" | "ARTIFACTS_NOT_PROXIED" | "BAD_RESPONSE";

/** Refused by the client before (or instead of) talking to the server, or an answer it cannot read. */
export class MlflowClientError extends MlflowError {
  override name = "MlflowClientError";
  readonly code: MlflowClientErrorCode;
  constructor(code: MlflowClientErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** Any error of this client. */
export function isMlflowError(e: unknown): e is MlflowError {
  return typeof e === "object" && e !== null && (e as Record<symbol, unknown>)[BRAND] === true;
}

/** An error answer from the server; with `code`, only that `error_code`. */
export function isMlflowApiError(e: unknown, code?: MlflowErrorCode): e is MlflowApiError {
  return (
    isMlflowError(e) && typeof (e as MlflowApiError).errorCode === "string" && typeof (e as MlflowApiError).status === "number" && (code === undefined || (e as MlflowApiError).errorCode === code)
  );
}

export function isMlflowNetworkError(e: unknown): e is MlflowNetworkError {
  return isMlflowError(e) && e.name === "MlflowNetworkError";
}

export function isMlflowClientError(e: unknown, code?: MlflowClientErrorCode): e is MlflowClientError {
  return isMlflowError(e) && e.name === "MlflowClientError" && (code === undefined || (e as MlflowClientError).code === code);
}

/** The run, experiment or artifact does not exist (`RESOURCE_DOES_NOT_EXIST`, HTTP 404). */
export function isResourceDoesNotExist(e: unknown): e is MlflowApiError {
  return isMlflowApiError(e, "RESOURCE_DOES_NOT_EXIST");
}

/** Creating something whose name is taken (`RESOURCE_ALREADY_EXISTS`, HTTP 400 in MLflow). */
export function isResourceAlreadyExists(e: unknown): e is MlflowApiError {
  return isMlflowApiError(e, "RESOURCE_ALREADY_EXISTS");
}

/** HTTP statuses the Python client retries (429 and 5xx except 501). */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([429, 500, 502, 503, 504]);

/**
 * The server ran out of database connections: SQLAlchemy's pool `TimeoutError` ("QueuePool limit
 * of size 5 overflow 10 reached, connection timed out, timeout 30.00"), which MLflow's tracking
 * server answers with HTTP 400 `BAD_REQUEST` (mlflow/store/db/utils.py maps every SQLAlchemy error
 * but `OperationalError` so). An overloaded server, not a bad request: retryable.
 */
export function isServerOverloaded(e: unknown): e is MlflowApiError {
  return isMlflowApiError(e) && e.status === 400 && /QueuePool limit of size \d+ overflow -?\d+ reached|sqlalche\.me\/e\/[\d.]+\/3o7r/.test(e.serverMessage);
}

/** Worth retrying an idempotent call: network failures, 429/500/502/503/504 and {@link isServerOverloaded}. */
export function isRetryable(e: unknown): boolean {
  return isMlflowNetworkError(e) || (isMlflowApiError(e) && RETRYABLE_STATUSES.has(e.status)) || isServerOverloaded(e);
}

/** The code the Python client gives a bare HTTP error (no MLflow error body). */
export function errorCodeForStatus(status: number): MlflowErrorCode {
  switch (status) {
    case 400:
      return "BAD_REQUEST";
    case 401:
      return "UNAUTHENTICATED";
    case 403:
      return "PERMISSION_DENIED";
    case 404:
      return "ENDPOINT_NOT_FOUND";
    case 409:
      return "RESOURCE_CONFLICT";
    case 429:
      return "REQUEST_LIMIT_EXCEEDED";
    case 501:
      return "NOT_IMPLEMENTED";
    case 503:
      return "TEMPORARILY_UNAVAILABLE";
    case 504:
      return "DEADLINE_EXCEEDED";
    default:
      return status >= 500 ? "INTERNAL_ERROR" : "BAD_REQUEST";
  }
}

/** Build the error for a non-2xx response from its status and body text. */
export function apiErrorFromBody(status: number, text: string, method: string, endpoint: string): MlflowApiError {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const b = typeof body === "object" && body !== null ? (body as Record<string, unknown>) : undefined;
  const errorCode = typeof b?.error_code === "string" ? b.error_code : errorCodeForStatus(status);
  const raw =
    typeof b?.message === "string"
      ? b.message
      : typeof b?.detail === "string" // FastAPI-style bodies
        ? b.detail
        : text.trim().slice(0, 500) || `HTTP ${status}`;
  return new MlflowApiError({ status, errorCode, serverMessage: raw, method, endpoint, body });
}
