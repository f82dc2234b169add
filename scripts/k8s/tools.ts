/**
 * Running the harness's command-line clients (kubectl, helm) with the cluster's command prefix,
 * so they reach a cluster inside a network namespace as well as one on the host's loopback.
 * Everything the harness itself asks the API goes through kubectl for the same reason: the Node
 * process may not be in the cluster's namespace.
 */
import { spawn } from "node:child_process";

export interface RunOptions {
  /** Written to the command's stdin. */
  input?: string;
  /** Added to the environment. */
  env?: Record<string, string>;
  /** Killed (SIGKILL) after this long; default 120 s. */
  timeoutMs?: number;
}

/** A command that exited non-zero (or was killed): its output is kept for the caller to inspect. */
export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(`${command} exited with ${exitCode ?? "a signal"}: ${stderr.trim() || stdout.trim()}`);
    this.name = "CommandError";
  }
}

/** Runs `prefix… binary args…`; resolves with stdout, rejects with a {@link CommandError}. */
export function runTool(prefix: string[], binary: string, args: string[], opts: RunOptions = {}): Promise<string> {
  const [cmd, ...pre] = [...prefix, binary];
  const name = `${binary.split("/").pop()} ${args.join(" ")}`.slice(0, 200);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd!, [...pre, ...args], {
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, NO_PROXY: "127.0.0.1,localhost", no_proxy: "127.0.0.1,localhost", ...opts.env },
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 120_000);
    child.once("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${name}: ${e.message}`));
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString("utf8");
      const stderr = Buffer.concat(err).toString("utf8");
      if (code === 0) resolve(stdout);
      else reject(new CommandError(name, code, stdout, stderr));
    });
    child.stdin.on("error", () => {}); // a command that exits before reading its input
    child.stdin.end(opts.input ?? "");
  });
}
