/**
 * Global setup of the vitest project `hybrid` (runs only when that project has test files to run):
 * Debian's tinyproxy, socat, iproute2 and openssl (apt-get, as root, once), the Python tools
 * (`mlflow server`, nats-server) and the web UI's bundle the control plane serves — then removes
 * what a suite that was killed left: its network namespaces and its run dir's processes.
 */
import { readdirSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { ensureHybridTools } from "../../scripts/hybrid/tools";
import { removeStaleSites } from "../../scripts/hybrid/site";
import { isAlive, recordedNames, stopProcesses } from "../../scripts/k8s/processes";
import { ensurePythonTools } from "../../scripts/local/python-tools";
import { ensureUiBuilt } from "../../scripts/local/ui-build";
import { HYBRID_RUN_DIR_PREFIX } from "./support";

export default async function setup(): Promise<void> {
  const log = (line: string) => console.log(line);
  if (process.getuid?.() !== 0) throw new Error("the hybrid tests make network namespaces (ip netns add) and install Debian packages: run them as root");
  ensureHybridTools(log);
  await ensurePythonTools(log);
  await ensureUiBuilt(log);
  removeStaleSites(log);
  const [dir, prefix] = [dirname(HYBRID_RUN_DIR_PREFIX), basename(HYBRID_RUN_DIR_PREFIX)];
  for (const d of readdirSync(dir)) {
    const owner = d.startsWith(prefix) ? Number(d.slice(prefix.length)) : Number.NaN;
    if (!Number.isInteger(owner) || isAlive(owner)) continue;
    log(`[hybrid] removing ${join(dir, d)}, left by a suite that is gone`);
    await stopProcesses(join(dir, d), recordedNames(join(dir, d)), { kill: true }).catch(() => undefined);
    rmSync(join(dir, d), { recursive: true, force: true });
  }
}
