/**
 * Structured JSON logs (pino). Secrets never reach a log line: every key that may hold one is
 * redacted wherever it appears (top level or nested up to three levels).
 */
import { pino, type DestinationStream, type Logger } from "pino";

export type { Logger } from "pino";

/** Keys whose values are secrets: the agent credential, NATS JWT and seed, bootstrap token, auth headers. */
export const SECRET_KEYS = ["credential", "jwt", "seed", "natsSeed", "bootstrapToken", "token", "authorization", "Authorization", "password", "secret"];

const redactPaths = SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`, `*.*.*.${k}`]);

export function createLogger(opts: { level?: string; destination?: DestinationStream; base?: Record<string, unknown> } = {}): Logger {
  return pino(
    {
      level: opts.level ?? "info",
      name: "parallels-agent",
      base: { ...opts.base },
      redact: { paths: redactPaths, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    opts.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}

/** An error as a loggable object without its stack for expected failures (network, HTTP). */
export const errInfo = (err: unknown) => (err instanceof Error ? { name: err.name, message: err.message } : { message: String(err) });
