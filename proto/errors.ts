/**
 * The one error shape of the API, shared by the control plane and every client (SDK, UI, CLI),
 * so a client can switch on `code` instead of parsing messages.
 */
import { z } from "zod";

export const ErrorCode = z.enum([
  "malformed_body", // not JSON/YAML at all
  "invalid_request", // well-formed, but fields are missing, unknown or of the wrong type
  "unauthenticated",
  "forbidden",
  "not_found",
  "method_not_allowed", // a known path without that method (the answer's Allow header lists its methods)
  "conflict",
  "payload_too_large",
  "invalid_dag", // the DAG document (or a run's use of it) cannot be accepted
  "unsupported_media_type",
  "unavailable", // a dependency (NATS) is down or not configured: retry later
  "internal",
]);
export type ErrorCode = z.infer<typeof ErrorCode>;

export const STATUS_OF: Record<ErrorCode, number> = {
  malformed_body: 400,
  invalid_request: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  invalid_dag: 422,
  internal: 500,
  unavailable: 503,
};

export const ProblemSchema = z.object({ path: z.string(), message: z.string() });
export type ProblemDetail = z.infer<typeof ProblemSchema>;

export const ErrorBodySchema = z.object({
  error: z.object({ code: ErrorCode, message: z.string(), details: z.array(ProblemSchema) }),
});
export type ErrorBody = z.infer<typeof ErrorBodySchema>;
