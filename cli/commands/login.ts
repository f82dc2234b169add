/**
 * `parallels login`: asks for the control plane's URL and an API token (typed without echo, or
 * piped on stdin), checks them against the API, and only then stores them (config.ts).
 */
import type { Command } from "commander";
import { read } from "read";
import { ParallelsClient } from "../../proto/client";
import { credentialsFile, readStored, store } from "../config";
import { CliError } from "../errors";

const DEFAULT_URL = "http://127.0.0.1:8787";

export function registerLogin(program: Command): void {
  program
    .command("login")
    .description("Store the control plane's URL and an API token (checked first) for the other commands")
    .option("--url <url>", "the control plane's URL (asked when not given)")
    .option("--token-stdin", "read the token from stdin (also the default when stdin is not a terminal)")
    .addHelpText(
      "after",
      `
The token is read without echo, or from stdin: \`printf %s "$T" | parallels login --url URL\`.
Stored 0600 in ${credentialsFile()}.
PARALLELS_URL and PARALLELS_TOKEN in the environment override the stored values.`,
    )
    .action(async (opts: { url?: string; tokenStdin?: boolean }) => {
      const interactive = process.stdin.isTTY && !opts.tokenStdin;
      let url = opts.url;
      if (!url) {
        if (!interactive) throw new CliError("--url is needed when the token comes from stdin");
        const previous = safeStored()?.url ?? DEFAULT_URL;
        url = (await read({ prompt: "Control plane URL:", default: previous, output: process.stderr })).trim();
      }
      const token = interactive ? await readSecret("API token:") : (await readStdin()).trim();
      if (!token) throw new CliError("no token given");

      let client: ParallelsClient;
      try {
        client = new ParallelsClient({ baseUrl: url, token, retry: { maxRetries: 1 } });
      } catch (e) {
        throw new CliError((e as Error).message);
      }
      // Every token may read its workspace's clusters: a cheap call that proves URL and token.
      await client.clusters.list({ limit: 1 }).page();
      const file = credentialsFile();
      store({ url: client.baseUrl, token }, file);
      process.stderr.write(`logged in to ${client.baseUrl}; stored in ${file}\n`);
      if (process.env.PARALLELS_URL || process.env.PARALLELS_TOKEN) process.stderr.write("note: PARALLELS_URL / PARALLELS_TOKEN are set and override the stored values\n");
    });
}

/** Typed without echo; the line break the hidden Enter did not show is written after it. */
async function readSecret(prompt: string): Promise<string> {
  const value = await read({ prompt, silent: true, replace: "", output: process.stderr });
  process.stderr.write("\n");
  return value.trim();
}

function safeStored() {
  try {
    return readStored();
  } catch {
    return undefined;
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}
