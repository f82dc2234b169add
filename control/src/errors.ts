/**
 * One error type for the whole API. Handlers throw `ApiError`; `onError` turns anything thrown
 * into `{error: {code, message, details}}` with the status that belongs to the code.
 */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { STATUS_OF, type ErrorBody, type ErrorCode, type ProblemDetail } from "../../proto/errors";

export class ApiError extends HTTPException {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: ProblemDetail[] = [],
    options?: { cause?: unknown },
  ) {
    super(STATUS_OF[code] as 400, { message, cause: options?.cause });
    this.name = "ApiError";
  }
}

/** D1 reports constraint failures only in the message text. */
export function isUniqueViolation(err: unknown): boolean {
  const text = `${(err as Error)?.message ?? ""} ${String((err as { cause?: unknown })?.cause ?? "")}`;
  return /UNIQUE constraint failed|PRIMARY KEY/i.test(text);
}

/**
 * A `.catch` handler for writes that a unique index may refuse: that refusal becomes a 409 with
 * `message` (and `details`); any other error goes on as it was.
 */
export const conflictOnUnique =
  (message: string, details: ProblemDetail[] = []) =>
  (err: unknown): never => {
    if (isUniqueViolation(err)) throw new ApiError("conflict", message, details);
    throw err;
  };

export const notFound = (what: string) => new ApiError("not_found", `${what} not found`);

export function errorBody(code: ErrorCode, message: string, details: ProblemDetail[] = []): ErrorBody {
  return { error: { code, message, details } };
}

export function onError(err: Error, c: Context): Response {
  if (err instanceof ApiError) return c.json(errorBody(err.code, err.message, err.details), err.status);
  if (err instanceof HTTPException) {
    // Hono's own exceptions (e.g. bodyLimit) carry a status but not our shape.
    const code = (Object.keys(STATUS_OF) as ErrorCode[]).find((k) => STATUS_OF[k] === err.status) ?? "invalid_request";
    return c.json(errorBody(code, err.message || code), err.status);
  }
  console.error(JSON.stringify({ msg: "unhandled error", error: String(err), stack: err.stack }));
  return c.json(errorBody("internal", "internal error"), 500);
}
