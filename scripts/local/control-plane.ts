/**
 * Runs the control plane locally the way the embedded default does: `wrangler dev` (workerd)
 * on 127.0.0.1 with a local D1 migrated by the real migrations, persisted under a state folder.
 * Used by `npm run dev`, `npm run demo`, the benchmark and end-to-end tests.
 */
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { startCronTicker, workerCronTriggers, type CronTicker } from "./cron-ticker";
import { freePort, saysPortInUse } from "./ports";
import { join, resolve } from "node:path";
import { promisify } from "node:util";

export { freePort };
export const ROOT = resolve(import.meta.dirname, "../..");
const WRANGLER = join(ROOT, "node_modules/.bin/wrangler");

/** No telemetry and no fetch of Cloudflare's request metadata: nothing leaves this machine. */
export const OFFLINE_ENV = { WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_LOG_SANITIZE: "true" };

export interface ControlPlane {
  url: string;
  stop(): Promise<void>;
  process: ChildProcess;
  /** With `cronTriggers`: the ticks fired so far. */
  cron?: CronTicker;
}

export interface ControlPlaneOptions {
  /** Where D1 and other local state persist. */
  stateDir: string;
  port?: number;
  /** Worker vars and secrets (e.g. PARALLELS_ADMIN_TOKEN); `.dev.vars` is read as well. */
  vars?: Record<string, string>;
  /** Forward wrangler's output (otherwise it is kept for error messages). */
  echo?: boolean;
  /**
   * Fire wrangler.toml's Cron Triggers every minute, as Cloudflare does (`wrangler dev` never
   * does): schedules create their runs. On for the embedded default; tests that count what the
   * control plane does leave it off.
   */
  cronTriggers?: boolean;
}

/** Applies db/migrations to the local D1 in `stateDir` (idempotent). */
export async function migrateLocalD1(stateDir: string): Promise<void> {
  mkdirSync(stateDir, { recursive: true });
  await promisify(execFile)(WRANGLER, ["d1", "migrations", "apply", "parallels", "--local", "--persist-to", stateDir], {
    cwd: ROOT,
    env: { ...process.env, ...OFFLINE_ENV, CI: "true" },
  });
}

export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  await migrateLocalD1(opts.stateDir);
  // A port taken between freePort() and wrangler's bind means: try others (only the inspector's,
  // when the caller fixed the API port — if that one is taken, the retries fail the same way).
  for (let attempt = 1; ; attempt++) {
    try {
      const cp = await launchWrangler(opts, opts.port ?? (await freePort()), await freePort());
      if (!opts.cronTriggers) return cp;
      const cron = startCronTicker({ url: cp.url, crons: workerCronTriggers(ROOT), log: (line) => process.stderr.write(`${line}\n`) });
      const stop = () => {
        cron.stop();
        return cp.stop();
      };
      return { ...cp, cron, stop };
    } catch (e) {
      if (!(e instanceof WranglerPortInUse) || attempt >= 3) throw e;
    }
  }
}

/**
 * The Worker's vars as a dotenv file in the state dir (0600), for `wrangler dev --env-file`.
 * wrangler expands `$NAME` in values (dotenv-expand): every `$` is escaped as `\$`.
 */
function writeVarsFile(stateDir: string, vars: Record<string, string>): string {
  const file = join(stateDir, "worker-vars.env");
  const quoted = (v: string) => {
    if (/["\\\n\r]/.test(v)) throw new Error(`a Worker var value with a quote, backslash or newline cannot go through --env-file: ${v.slice(0, 20)}…`);
    return `"${v.replaceAll("$", "\\$")}"`;
  };
  writeFileSync(
    file,
    Object.entries(vars)
      .map(([k, v]) => `${k}=${quoted(v)}\n`)
      .join(""),
    { mode: 0o600 },
  );
  chmodSync(file, 0o600);
  return file;
}

class WranglerPortInUse extends Error {}

async function launchWrangler(opts: ControlPlaneOptions, port: number, inspectorPort: number): Promise<ControlPlane> {
  const args = [
    "dev",
    "--ip",
    "127.0.0.1",
    "--port",
    String(port),
    "--inspector-port",
    String(inspectorPort),
    "--persist-to",
    opts.stateDir,
    "--show-interactive-dev-session=false",
    "--log-level",
    "info",
  ];
  // Through a 0600 file, not `--var` arguments: a command line (with NATS signing seeds) is
  // readable by every user of the machine in `ps`.
  // With --env-file wrangler skips `.dev.vars`: name it first, so `vars` add to it and win.
  if (opts.vars && Object.keys(opts.vars).length > 0) {
    const devVars = join(ROOT, ".dev.vars");
    if (existsSync(devVars)) args.push("--env-file", devVars);
    args.push("--env-file", writeVarsFile(opts.stateDir, opts.vars));
  }
  const child = spawn(WRANGLER, args, { cwd: ROOT, env: { ...process.env, ...OFFLINE_ENV }, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let output = "";
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
    if (opts.echo) process.stderr.write(chunk);
  };
  child.stdout!.on("data", collect);
  child.stderr!.on("data", collect);
  // "close" comes after the output pipes are drained ("exit" may come before the last words).
  let closed = false;
  const closing = new Promise<void>((r) => child.once("close", () => r()));
  void closing.then(() => (closed = true));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    try {
      process.kill(-child.pid!, "SIGTERM");
    } catch {
      /* already gone */
    }
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      /* already gone */
    }
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null || closed) {
      await closing;
      const message = `wrangler dev exited (${child.exitCode}):\n${output}`;
      throw saysPortInUse(output) ? new WranglerPortInUse(message) : new Error(message);
    }
    try {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) });
      // Healthy, and from our wrangler (another process's server may hold the port we lost).
      if (res.ok && child.exitCode === null) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`wrangler dev did not answer on ${url} within 60 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { url, stop, process: child };
}
