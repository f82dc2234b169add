/**
 * The harness's binaries, built once per set of versions by scripts/k8s/build.sh and cached
 * outside the clone (~/.cache/mlflow-parallels/k8s/<versions>/bin): cold about 12 minutes on
 * an idle 2-core machine, warm instant.
 */
import { spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
export const BUILD_SCRIPT = join(HERE, "build.sh");
export const BINARIES = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok", "helm"] as const;

/** Names of the binaries missing from (or not executable in) `binDir`. */
export function missingBinaries(binDir: string): string[] {
  return BINARIES.filter((b) => {
    try {
      accessSync(join(binDir, b), constants.X_OK);
      return false;
    } catch {
      return true;
    }
  });
}

/**
 * Runs build.sh (instant when cached) and returns the bin folder. Build progress goes to `log`
 * line by line (default: stderr), so a first run shows what it is waiting for.
 */
export function ensureK8sBinaries(opts: { log?: (line: string) => void } = {}): Promise<string> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  return new Promise((ok, fail) => {
    const child = spawn("bash", [BUILD_SCRIPT], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let partial = "";
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString("utf8")));
    child.stderr.on("data", (b: Buffer) => {
      const lines = (partial + b.toString("utf8")).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) log(`[k8s build] ${line}`);
    });
    child.once("error", (e) => fail(new Error(`cannot run ${BUILD_SCRIPT}: ${e.message}`)));
    child.once("close", (code) => {
      if (partial) log(`[k8s build] ${partial}`);
      if (code !== 0) return fail(new Error(`${BUILD_SCRIPT} exited with ${code}; its output is above`));
      const binDir = resolve(stdout.trim().split("\n").pop() ?? "");
      const missing = missingBinaries(binDir);
      if (missing.length) return fail(new Error(`${BUILD_SCRIPT} printed ${binDir}, which lacks ${missing.join(", ")}`));
      ok(binDir);
    });
  });
}
