/**
 * The harness's long-running processes, recorded in the run dir so that any process can stop or
 * restart them — the vitest process that started the cluster, a test worker that restarts the
 * apiserver, or the next start after a crash:
 *   <runDir>/pids/<name>.pid     the PID
 *   <runDir>/launch/<name>.json  how it was started (prefix, binary, args), to start it again
 *   <runDir>/logs/<name>.log     its output, appended across restarts
 *
 * Only recorded PIDs are ever signalled, never processes found by name, and only while
 * /proc/<pid>/cmdline still names the run dir (every component's arguments contain a path in it),
 * so a PID the kernel has since given to an unrelated process is left alone.
 */
import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";

export interface Launch {
  name: string;
  /** Runs before the binary, e.g. `["ip", "netns", "exec", "hybrid-a"]` (it execs, so the PID stays the binary's). */
  prefix: string[];
  binary: string;
  args: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const pidFile = (runDir: string, name: string) => join(runDir, "pids", `${name}.pid`);
export const logFile = (runDir: string, name: string) => join(runDir, "logs", `${name}.log`);
const launchFile = (runDir: string, name: string) => join(runDir, "launch", `${name}.json`);

/**
 * Whether the process still exists in a way that matters: running, or with threads still exiting.
 * A dead child not yet reaped (a zombie) still answers `kill(pid, 0)`, so /proc is read instead.
 * But the leader of a multi-threaded process (every Go binary) turns zombie while its other
 * threads are still on their way out — holding the process's files, its listening sockets among
 * them: restarting the apiserver then failed with "address already in use". So a zombie is
 * dead only once it is its last thread.
 */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The state letter follows the command name in parentheses, which may itself hold spaces.
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    if (state !== "Z" && state !== "X") return true;
    return readdirSync(`/proc/${pid}/task`).length > 1;
  } catch {
    return false;
  }
}

/**
 * Whether `pid` is still a process of this run dir: its command line names a path inside it
 * (`<runDir>/`, so that run dir `…/vitest-1` does not claim the processes of `…/vitest-12`).
 */
export function isOurs(pid: number, runDir: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(`${runDir}/`);
  } catch {
    return false;
  }
}

/** The recorded PID of `name`, if it is still a live process of this run dir. */
export function livePid(runDir: string, name: string): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile(runDir, name), "utf8").trim());
  } catch {
    return undefined;
  }
  return Number.isInteger(pid) && pid > 0 && isAlive(pid) && isOurs(pid, runDir) ? pid : undefined;
}

/** Names of every process with a pid file in the run dir. */
export function recordedNames(runDir: string): string[] {
  try {
    return readdirSync(join(runDir, "pids"))
      .filter((f) => f.endsWith(".pid"))
      .map((f) => f.slice(0, -4));
  } catch {
    return [];
  }
}

/**
 * Starts a process (output appended to its log), records its PID and launch, and returns the
 * PID. The child is unref'd: the harness's `stop()` (or the owner's exit hook) ends it, not
 * the Node event loop.
 */
export async function launch(runDir: string, l: Launch): Promise<number> {
  await Promise.all(["pids", "launch", "logs"].map((d) => mkdir(join(runDir, d), { recursive: true })));
  writeFileSync(launchFile(runDir, l.name), JSON.stringify(l, null, 2));
  const fd = openSync(logFile(runDir, l.name), "a");
  try {
    const [cmd, ...pre] = [...l.prefix, l.binary];
    const child = spawn(cmd!, [...pre, ...l.args], {
      stdio: ["ignore", fd, fd],
      // Never let a proxy setting of the caller's environment route loopback traffic elsewhere.
      env: { ...process.env, NO_PROXY: "127.0.0.1,localhost", no_proxy: "127.0.0.1,localhost" },
    });
    const pid = child.pid;
    if (pid === undefined) {
      // spawn reports ENOENT asynchronously; wait for it to name the cause.
      const err = await new Promise<Error>((ok) => child.once("error", ok));
      throw new Error(`cannot start ${l.name} (${cmd}): ${err.message}`);
    }
    child.on("error", () => {}); // already reported through the PID check
    child.unref();
    writeFileSync(pidFile(runDir, l.name), `${pid}\n`);
    return pid;
  } finally {
    closeSync(fd);
  }
}

/** Starts `name` again exactly as it was launched before (same prefix, binary, arguments). */
export async function relaunch(runDir: string, name: string): Promise<number> {
  const l = JSON.parse(readFileSync(launchFile(runDir, name), "utf8")) as Launch;
  return launch(runDir, l);
}

/**
 * Stops the named processes together: SIGTERM, then SIGKILL for those still alive after
 * `graceMs`, then waits until they are gone. Returns the names that needed SIGKILL.
 * With `kill`, SIGKILL at once (a crash, for fault tests).
 */
export async function stopProcesses(runDir: string, names: string[], opts: { graceMs?: number; kill?: boolean } = {}): Promise<string[]> {
  const graceMs = opts.graceMs ?? 10_000;
  const targets: Array<{ name: string; pid: number }> = [];
  for (const name of names) {
    const pid = livePid(runDir, name);
    if (pid === undefined) continue;
    try {
      process.kill(pid, opts.kill ? "SIGKILL" : "SIGTERM");
      targets.push({ name, pid });
    } catch {
      /* gone meanwhile */
    }
  }
  const killed: string[] = [];
  const deadline = Date.now() + graceMs;
  while (targets.some((t) => isAlive(t.pid)) && Date.now() < deadline) await sleep(50);
  for (const t of targets) {
    if (!isAlive(t.pid)) continue;
    killed.push(t.name);
    try {
      process.kill(t.pid, "SIGKILL");
    } catch {
      /* gone meanwhile */
    }
  }
  const killDeadline = Date.now() + 10_000;
  while (targets.some((t) => isAlive(t.pid)) && Date.now() < killDeadline) await sleep(50);
  const stuck = targets.filter((t) => isAlive(t.pid));
  if (stuck.length) throw new Error(`still running after SIGKILL: ${stuck.map((t) => `${t.name} (${t.pid})`).join(", ")}`);
  for (const name of names) rmSync(pidFile(runDir, name), { force: true });
  return killed;
}

/** SIGKILLs every recorded process of the run dir, synchronously (for a `process.on("exit")` hook). */
export function killAllSync(runDir: string): void {
  if (!existsSync(join(runDir, "pids"))) return;
  for (const name of recordedNames(runDir)) {
    const pid = livePid(runDir, name);
    if (pid === undefined) continue;
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* gone meanwhile */
    }
  }
}

/** The last `lines` lines of a process's log, for error messages. */
export function logTail(runDir: string, name: string, lines = 20): string {
  try {
    const text = readFileSync(logFile(runDir, name), "utf8");
    return text.trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}
