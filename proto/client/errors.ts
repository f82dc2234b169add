/**
 * @module
 * The one error class of the SDK. Whatever goes wrong — the API refused the request, no answer
 * came, or the answer could not be read — the caller gets a `ParallelsError` with a `code` to
 * switch on, the HTTP `status` (0 when no answer came), and `details`: every problem the API
 * listed, each with the path of the field it is about (`nodes[3].inputs.images`).
 *
 * Aborting a call through its `signal` is not an error of the API: it rejects with the signal's
 * reason (an `AbortError` DOMException, as `fetch` itself does).
 */
import { type ErrorCode as ApiErrorCode, ErrorBodySchema, type ProblemDetail, STATUS_OF } from "../errors";

/**
 * The API's error codes (`proto/errors.ts`). An alias rather than a re-export: that module's
 * `ErrorCode` is also a zod schema, which the SDK does not export (its declarations would claim a
 * value the module does not have).
 */
export type ErrorCode = ApiErrorCode;
export type { ProblemDetail };

/**
 * The API's own codes (`proto/errors.ts`), and two of the client's: `network_error` (no answer:
 * refused, reset, timed out) and `bad_response` (an answer that is not the endpoint's shape).
 */
export type ClientErrorCode = ErrorCode | "network_error" | "bad_response";

// A brand instead of `instanceof` alone: two copies of the SDK in one bundle still recognise each other's errors.
const BRAND = Symbol.for("mlflow-parallels.client.error");

export interface ParallelsErrorInit {
  code: ClientErrorCode;
  message: string;
  /** HTTP status of the answer; 0 when no answer came. */
  status: number;
  details?: ProblemDetail[];
  method: string;
  /** The request's path below the base URL, e.g. `/v1/runs`. */
  path: string;
  cause?: unknown;
}

export class ParallelsError extends Error {
  override name = "ParallelsError";
  readonly [BRAND] = true;
  readonly code: ClientErrorCode;
  readonly status: number;
  readonly details: ProblemDetail[];
  readonly method: string;
  readonly path: string;

  constructor(init: ParallelsErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.code = init.code;
    this.status = init.status;
    this.details = init.details ?? [];
    this.method = init.method;
    this.path = init.path;
  }
}

export function isParallelsError(e: unknown): e is ParallelsError {
  return typeof e === "object" && e !== null && (e as Record<symbol, unknown>)[BRAND] === true;
}

const CODE_OF_STATUS = new Map<number, ErrorCode>(Object.entries(STATUS_OF).map(([code, status]) => [status, code as ErrorCode]));

/**
 * The error of an answer with an error status. The API's own body is taken as it is; anything
 * else (a proxy's HTML page, an empty 502) gets the code of its status and the start of its text.
 */
export function errorFromAnswer(status: number, text: string, req: { method: string; path: string }): ParallelsError {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  const body = ErrorBodySchema.safeParse(json);
  if (body.success) return new ParallelsError({ ...body.data.error, status, ...req });
  const code = CODE_OF_STATUS.get(status) ?? (status === 429 || status === 502 || status === 504 ? "unavailable" : status >= 500 ? "internal" : "invalid_request");
  const snippet = text.trim().slice(0, 200);
  return new ParallelsError({ code, status, message: `HTTP ${status} from ${req.method} ${req.path}${snippet ? `: ${snippet}` : ""}`, ...req });
}
