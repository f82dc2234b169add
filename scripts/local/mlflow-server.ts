/**
 * A real `mlflow server`, from the project's venv (`scripts/python-env.sh`), for the embedded
 * default and the tests: SQLite backend and proxied artifacts (`--serve-artifacts`) in a temp dir
 * (or a kept `dir`), bound to 127.0.0.1 on a free port, one uvicorn worker. `stop()` ends the
 * whole process group and removes a temp dir.
 *
 * Start-up (≈5 s on the dev machine, most of it Python importing MLflow twice: the CLI, then the
 * uvicorn worker) is kept short by:
 * - `MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false`: otherwise MLflow 3 also starts a job runner with
 *   seven huey consumers (≈15 s instead of ≈6 s) and leaves a folder in /dev/shm;
 * - a migrated, empty SQLite database kept in the OS temp dir per venv (keyed by the requirements
 *   hash) and copied into each new server's dir, so MLflow finds its tables up to date (≈0.8 s);
 * - polling `/health` every 50 ms.
 *
 * MLflow 3's security middleware accepts Host headers of localhost / 127.0.0.1 / private IPs and
 * CORS origins `http://localhost:*`, `http://127.0.0.1:*` by default, which is what tests use;
 * pass `extraArgs` (e.g. `--cors-allowed-origins`) for anything else.
 *
 * @example
 * ```ts
 * let mlflow: MlflowTestServer;
 * beforeAll(async () => { mlflow = await startMlflowServer(); }, MLFLOW_START_TIMEOUT_MS);
 * afterAll(() => mlflow?.stop());
 * ```
 */
import { spawn, type ChildProcess } from "node:child_process";
import { ensurePythonTools } from "./python-tools";
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { freePort } from "./ports";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Enough for `python-env.sh` to install the venv on a fresh machine, then start the server. */
export const MLFLOW_START_TIMEOUT_MS = 600_000;

export interface MlflowTestServer {
  /** `http://127.0.0.1:<port>`: the tracking URI. */
  url: string;
  port: number;
  /** Temp dir holding `mlflow.db`, `artifacts/` and `server.log`. */
  dir: string;
  /** The venv's bin folder (`mlflow`, `python`). */
  binDir: string;
  /** Milliseconds from spawn to the first good `/health` (venv check not included). */
  startupMs: number;
  /** What the server printed so far (stdout and stderr, last 200 kB). */
  output(): string;
  /** SIGTERM to the process group, SIGKILL after 5 s; removes `dir` (unless `keepDir`). Idempotent. */
  stop(): Promise<void>;
}

export interface StartMlflowOptions {
  /** More `mlflow server` arguments. */
  extraArgs?: string[];
  /** More environment for the server. */
  env?: Record<string, string>;
  /** Waiting for `/health` (default 90 s). */
  healthTimeoutMs?: number;
  /** Keep the temp dir after stop (to inspect it). */
  keepDir?: boolean;
  /** Use this folder (created if missing, kept after stop) instead of a temp dir: runs persist. */
  dir?: string;
  /** Listen on this port instead of a free one. */
  port?: number;
}

/** Where the migrated empty database of this venv is kept between test runs. */
async function templatePath(binDir: string): Promise<string> {
  const stamp = await readFile(join(binDir, "..", ".requirements.sha256"), "utf8").catch(() => "unknown");
  return join(tmpdir(), `parallels-mlflow-template-${stamp.trim().slice(0, 16)}.db`);
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // A test run that dies before afterAll must not leave servers behind.
  process.on("exit", () => {
    for (const c of live) killGroup(c, "SIGKILL");
  });
}

/** Start a fresh server (own database, own artifacts). */
export async function startMlflowServer(opts: StartMlflowOptions = {}): Promise<MlflowTestServer> {
  const binDir = await ensurePythonTools();
  const keep = opts.keepDir || opts.dir !== undefined;
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), "parallels-mlflow-")));
  await mkdir(dir, { recursive: true });
  const template = await templatePath(binDir);
  const db = join(dir, "mlflow.db");
  const hadTemplate =
    existsSync(db) ||
    (existsSync(template) &&
      (await copyFile(template, db).then(
        () => true,
        () => false,
      )));
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = opts.port ?? (await freePort());
    try {
      const server = await launch(binDir, dir, port, { ...opts, keepDir: keep });
      if (!hadTemplate) {
        // Save the freshly migrated, still empty database for the next servers (atomic rename).
        const tmp = `${template}.${process.pid}.${Date.now()}`;
        await copyFile(db, tmp)
          .then(() => rename(tmp, template))
          .catch(() => rm(tmp, { force: true }));
      }
      return server;
    } catch (e) {
      lastError = e;
      // A port taken between freePort() and bind: try another; anything else: give up.
      if (!(e instanceof PortInUseError) || opts.port !== undefined) break;
    }
  }
  if (!keep) await rm(dir, { recursive: true, force: true });
  throw lastError;
}

class PortInUseError extends Error {}

async function launch(binDir: string, dir: string, port: number, opts: StartMlflowOptions): Promise<MlflowTestServer> {
  const url = `http://127.0.0.1:${port}`;
  const args = [
    "server",
    "--backend-store-uri",
    `sqlite:///${join(dir, "mlflow.db")}`,
    "--serve-artifacts",
    "--artifacts-destination",
    join(dir, "artifacts"),
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    "--workers",
    "1",
    ...(opts.extraArgs ?? []),
  ];
  const started = performance.now();
  const child = spawn(join(binDir, "mlflow"), args, {
    cwd: dir,
    detached: true, // own process group: stop() signals mlflow, uvicorn and anything they started
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      MLFLOW_SERVER_ENABLE_JOB_EXECUTION: "false",
      // MLflow 3 sends usage telemetry to config.mlflow-telemetry.io otherwise: nothing of a test leaves the machine.
      MLFLOW_DISABLE_TELEMETRY: "true",
      PYTHONUNBUFFERED: "1",
      ...opts.env,
    },
  });
  live.add(child);
  installExitHook();
  let out = "";
  const collect = (b: Buffer) => {
    out = (out + b.toString("utf8")).slice(-200_000);
  };
  child.stdout!.on("data", collect);
  child.stderr!.on("data", collect);
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exitPromise = new Promise<void>((r) =>
    child.once("exit", (code, signal) => {
      exited = { code, signal };
      live.delete(child);
      r();
    }),
  );

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (!exited) {
      killGroup(child, "SIGTERM");
      const timer = setTimeout(() => killGroup(child, "SIGKILL"), 5_000);
      await exitPromise;
      clearTimeout(timer);
    }
    killGroup(child, "SIGKILL"); // stragglers of the group whose leader already left
    live.delete(child);
    await writeFile(join(dir, "server.log"), out).catch(() => undefined);
    if (!opts.keepDir) await rm(dir, { recursive: true, force: true });
  };

  const deadline = started + (opts.healthTimeoutMs ?? 90_000);
  for (;;) {
    if (exited) {
      killGroup(child, "SIGKILL");
      const msg = `mlflow server exited (${exited.code ?? exited.signal}) before answering /health:\n${out.slice(-4000)}`;
      if (/address already in use|Errno 98/i.test(out)) throw new PortInUseError(msg);
      throw new Error(msg);
    }
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1_000) });
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (performance.now() > deadline) {
      await stopQuietly(stop);
      throw new Error(`mlflow server did not answer ${url}/health within ${opts.healthTimeoutMs ?? 90_000} ms:\n${out.slice(-4000)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    port,
    dir,
    binDir,
    startupMs: Math.round(performance.now() - started),
    output: () => out,
    stop,
  };
}

async function stopQuietly(stop: () => Promise<void>): Promise<void> {
  await stop().catch(() => undefined);
}
