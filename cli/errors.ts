/**
 * Exit codes and error reporting of the CLI. An API error is printed with its code and status and
 * every problem the API listed, each with its path, so a DAG with three mistakes is fixed in one
 * go rather than three.
 */
import { isParallelsError } from "../proto/client";

/** The CLI's exit codes; `run start --watch` and `run watch` exit with the run's outcome. */
export const EXIT = {
  ok: 0,
  /** With `--watch`: the run failed. */
  runFailed: 1,
  /** The command could not be carried out: refused by the API, bad input, no answer. */
  error: 2,
  /** With `--watch`: the run was cancelled. */
  runCancelled: 3,
  /** Ctrl-C while watching (the run goes on). */
  interrupted: 130,
} as const;

/** A problem found by the CLI itself (bad input, not logged in). */
export class CliError extends Error {
  override name = "CliError";
}

/** The lines to print for an error. */
export function describeError(e: unknown): string[] {
  if (isParallelsError(e)) {
    const where = e.status ? `${e.code}, HTTP ${e.status}` : e.code;
    const lines = [`error: ${e.message} (${where})`];
    for (const d of e.details) lines.push(`  ${d.path || "(document)"}: ${d.message}`);
    if (e.code === "unauthenticated") lines.push("hint: run `parallels login` again, or check PARALLELS_TOKEN");
    return lines;
  }
  if (e instanceof CliError) return [`error: ${e.message}`];
  return [`error: ${e instanceof Error ? e.message : String(e)}`];
}
