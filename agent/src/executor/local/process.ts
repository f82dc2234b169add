/**
 * @module
 * Step processes that outlive the agent. Each partition runs as
 * `sh -c <wrapper> <shell> <command> <dir>`, spawned detached (its own session and process
 * group, pid = pgid) with no pipes to the agent, so an agent SIGKILL leaves it running. The
 * wrapper runs `<shell> -c <command>` as MLflow's local backend does (`bash -c`), with stdout and
 * stderr going to files in `<dir>`, and when the command ends writes its exit code to
 * `<dir>/exit` (temp file + rename). The wrapper traps TERM/INT/HUP so a group-wide SIGTERM still
 * lets it record the command's code (143); a SIGKILL leaves no file, and the process is then
 * "vanished".
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";

const WRAPPER = [
  "trap 'parallels_signalled=1' TERM INT HUP",
  'printf "%s\\n" "$$" >"$2/pid"',
  '"$0" -c "$1" </dev/null >"$2/stdout.log" 2>"$2/stderr.log"',
  "code=$?",
  'printf "%s\\n" "$code" >"$2/exit.tmp" && mv -f "$2/exit.tmp" "$2/exit"',
  'exit "$code"',
].join("\n");

export interface SpawnInput {
  /** The rendered entry point command. */
  command: string;
  /** Shell running the command (`bash`, as MLflow's local backend). */
  shell: string;
  /** Working directory (the project). */
  cwd: string;
  /** Folder for stdout.log, stderr.log and exit. Must exist. */
  dir: string;
  env: NodeJS.ProcessEnv;
}

export interface Spawned {
  pid: number;
  pidStart?: string;
  /** Resolves when the wrapper exits, if it is our child (not after a restart). */
  exited: Promise<void>;
}

export function spawnDetached(input: SpawnInput): Promise<Spawned> {
  return new Promise((ok, fail) => {
    const child = spawn("/bin/sh", ["-c", WRAPPER, input.shell, input.command, input.dir], {
      cwd: input.cwd,
      env: input.env,
      detached: true,
      stdio: "ignore",
    });
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    child.once("error", fail);
    child.once("spawn", () => {
      child.unref();
      const pid = child.pid!;
      const s: Spawned = { pid, exited };
      const start = pidStartStamp(pid);
      if (start !== undefined) s.pidStart = start;
      ok(s);
    });
  });
}

/** `/proc/<pid>/stat` field 22 (start time in clock ticks); undefined when unavailable. */
export function pidStartStamp(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) is in parentheses and may contain spaces.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return rest[19]; // field 22 is the 20th after the name
  } catch {
    return undefined;
  }
}

/** Whether the wrapper with that pid (and start stamp) still exists. */
export function isAlive(pid: number, pidStart?: string): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
  if (pidStart !== undefined) {
    const now = pidStartStamp(pid);
    if (now !== undefined && now !== pidStart) return false; // pid reused by another process
    if (now !== undefined && isZombie(pid)) return false;
  }
  return true;
}

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return false;
  }
}

/** Whether any process of the group is left. */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Signal a whole process group; false when it is gone. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/** The recorded exit code, or undefined while there is none. */
export async function readExitCode(dir: string): Promise<number | undefined> {
  try {
    const text = (await readFile(join(dir, "exit"), "utf8")).trim();
    const n = Number.parseInt(text, 10);
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

/** The wrapper's pid as it wrote it on start (finds a process started just before a crash). */
export async function readPidFile(dir: string): Promise<number | undefined> {
  try {
    const n = Number.parseInt((await readFile(join(dir, "pid"), "utf8")).trim(), 10);
    return Number.isFinite(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** The last `lines` lines of a log file (at most the last 64 kB are read). */
export async function tailFile(path: string, lines: number, maxChars = 2000): Promise<string> {
  try {
    const buf = await readFile(path);
    const text = buf.subarray(Math.max(0, buf.length - 65536)).toString("utf8");
    const out = text.replace(/\s+$/, "").split("\n").slice(-lines).join("\n");
    return out.length > maxChars ? `…${out.slice(-maxChars)}` : out;
  } catch {
    return "";
  }
}
