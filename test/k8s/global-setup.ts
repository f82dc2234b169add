/**
 * Global setup of the vitest project `k8s` (runs only when that project has test files to run,
 * so `vitest run --project node` starts no cluster): builds the harness binaries on first use
 * (about 12 minutes once, then cached), starts ONE cluster for the whole project and stops it
 * after. Tests get its connection info with `inject("k8s")` and a handle with
 * `attachK8sCluster(inject("k8s"))`; each test isolates itself in namespaces of its own.
 *
 * The run dir is `.state/k8s/vitest-<pid>`: two suites at once (e.g. `npm test` and
 * `npm run test:k8s` in one clone) do not share it, and a suite that was killed leaves a dir
 * whose owner is gone — the next suite stops its processes and removes it. A finished suite's
 * run dir stays too, with every component's log, until then.
 */
import { readdir, rm } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";
import { ensureK8sBinaries, type K8sClusterInfo, startK8sCluster, stopK8sRunDir } from "../../scripts/k8s/harness";
import { isAlive } from "../../scripts/k8s/processes";

declare module "vitest" {
  export interface ProvidedContext {
    /** The suite's shared cluster (see test/k8s/global-setup.ts). */
    k8s: K8sClusterInfo;
  }
}

const STATE = resolve(dirname(fileURLToPath(import.meta.url)), "../../.state/k8s");

/** Stops and removes the run dirs of suites that are no longer running. */
async function sweepStale(): Promise<void> {
  let dirs: string[];
  try {
    dirs = await readdir(STATE);
  } catch {
    return;
  }
  for (const d of dirs) {
    const owner = /^vitest-(\d+)$/.exec(d)?.[1];
    if (!owner || isAlive(Number(owner))) continue;
    console.log(`[k8s] removing ${join(STATE, d)}, left by a suite that is gone`);
    await stopK8sRunDir(join(STATE, d));
    await rm(join(STATE, d), { recursive: true, force: true });
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const log = (line: string) => console.log(line);
  await sweepStale();
  const binDir = await ensureK8sBinaries({ log });
  const runDir = join(STATE, `vitest-${process.pid}`);
  const cluster = await startK8sCluster({ name: "vitest", runDir, binDir, log });
  project.provide("k8s", cluster.info());
  return async () => {
    await cluster.stop();
    // The logs of every component stay for inspection until the next suite sweeps the run dir;
    // etcd's data (64 MB of preallocated WAL) does not.
    await rm(join(runDir, "etcd"), { recursive: true, force: true });
  };
}
