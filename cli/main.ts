/**
 * `parallels`, the command line of MLflow Parallels, built on the SDK (`proto/client`). Commands
 * are commander subcommands, one module per resource (commands/); every error ends here, is
 * printed with each problem's path, and exits non-zero (errors.ts lists the codes).
 */
import { Command, CommanderError } from "commander";
import pkg from "../package.json" with { type: "json" };
import { registerClusters } from "./commands/clusters";
import { registerDags } from "./commands/dags";
import { registerLogin } from "./commands/login";
import { registerRuns } from "./commands/runs";
import { registerSchedules } from "./commands/schedules";
import { newContext } from "./context";
import { describeError, EXIT } from "./errors";

export function buildProgram(): Command {
  const program = new Command("parallels")
    .description("MLflow Parallels: run DAGs of MLflow Projects on your clusters")
    .version(pkg.version)
    // The program's options only before a command: `dag get x --version 2` is the DAG's version, not the CLI's.
    .enablePositionalOptions()
    .showHelpAfterError()
    // Usage errors throw instead of exiting, so they share the exit code of every other error.
    .exitOverride()
    .addHelpText(
      "after",
      `
Log in once (\`parallels login\`), or set PARALLELS_URL and PARALLELS_TOKEN.
Every command that prints takes -o json|yaml|table; \`parallels <command> --help\` says more.`,
    );
  const ctx = newContext();
  registerLogin(program);
  registerClusters(program, ctx);
  registerDags(program, ctx);
  registerRuns(program, ctx);
  registerSchedules(program, ctx);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version "fail" with exit code 0; a usage error has printed its message already.
      process.exitCode = e.exitCode === 0 ? EXIT.ok : EXIT.error;
      return;
    }
    for (const line of describeError(e)) process.stderr.write(`${line}\n`);
    process.exitCode = EXIT.error;
  }
}

await main(process.argv);
