/**
 * Where the CLI finds the control plane and its token: `PARALLELS_URL` and `PARALLELS_TOKEN` in
 * the environment, each overriding what `parallels login` stored in
 * `$XDG_CONFIG_HOME/mlflow-parallels/credentials.json` (`~/.config/...` without it). The file holds
 * a secret: it is written 0600 in a 0700 folder, through a temporary file renamed into place, so no
 * other user can read it even for a moment and a crash never leaves half a file.
 */
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { z } from "zod";
import { CliError } from "./errors";

const Credentials = z.object({ url: z.string().min(1), token: z.string().min(1) });
export type Credentials = z.infer<typeof Credentials>;

export function credentialsFile(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME?.startsWith("/") ? env.XDG_CONFIG_HOME : join(homedir(), ".config");
  return join(base, "mlflow-parallels", "credentials.json");
}

/** What `login` stored, or undefined when nothing was. A file that cannot be read is an error, not "logged out". */
export function readStored(file = credentialsFile()): Credentials | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new CliError(`cannot read ${file}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new CliError(`${file} is not JSON; run \`parallels login\` again`);
  }
  const parsed = Credentials.safeParse(json);
  if (!parsed.success) throw new CliError(`${file} lacks a url or a token; run \`parallels login\` again`);
  return parsed.data;
}

export function store(creds: Credentials, file = credentialsFile()): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(creds, null, 2)}\n`, { mode: 0o600 });
  // The mode given to writeFileSync passes through the umask; say it once more, exactly.
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}

/** The URL and token a command uses: the environment first, then the stored login. */
export function resolveCredentials(env: NodeJS.ProcessEnv = process.env): Credentials {
  const stored = env.PARALLELS_URL && env.PARALLELS_TOKEN ? undefined : readStored(credentialsFile(env));
  const url = env.PARALLELS_URL || stored?.url;
  const token = env.PARALLELS_TOKEN || stored?.token;
  if (!url || !token) throw new CliError("not logged in: run `parallels login`, or set PARALLELS_URL and PARALLELS_TOKEN");
  return { url, token };
}
