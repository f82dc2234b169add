/**
 * Global setup of the vitest project `images` (runs only when that project has test files to
 * run): the container tools from Debian (apt-get, as root, once), the Python tools (`mlflow
 * server`), the Debian-made Python base image (cached by key outside the clone), and ONE real
 * registry on 127.0.0.1 for the project, with the base image in it under the name the Dockerfile
 * generator asks for. Tests reach it with `inject("images")`; each test keeps its own container
 * state (storage, configuration) in a folder of its own and its images under a prefix of its own.
 *
 * The run dir is `.state/images/vitest-<pid>`; a suite that was killed leaves one whose owner is
 * gone, and the next suite stops its registry and removes it.
 */
import { readdir, rm } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";
import { ensureBaseArchive, putBaseImage, BASE_PYTHON } from "../../scripts/images/base-image";
import { containerState, removeContainerState } from "../../scripts/images/containers";
import { startRegistry } from "../../scripts/images/registry";
import { ensureContainerTools } from "../../scripts/images/tools";
import { isAlive, recordedNames, stopProcesses } from "../../scripts/k8s/processes";
import { ensurePythonTools } from "../../scripts/local/python-tools";

export interface ImagesSuiteInfo {
  /** The registry, `127.0.0.1:<port>` (plain HTTP). */
  registry: string;
  /** The base image's repository and tag in it (`parallels-test/python:3.11-debian-bookworm`). */
  baseRepository: string;
  baseTag: string;
  /** The cached OCI archive of the base image. */
  baseArchive: string;
  runDir: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    images: ImagesSuiteInfo;
  }
}

const STATE = resolve(dirname(fileURLToPath(import.meta.url)), "../../.state/images");

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
    console.log(`[images] removing ${join(STATE, d)}, left by a suite that is gone`);
    await stopProcesses(join(STATE, d), recordedNames(join(STATE, d)));
    await rm(join(STATE, d), { recursive: true, force: true });
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const log = (line: string) => console.log(line);
  await sweepStale();
  ensureContainerTools(log);
  await ensurePythonTools(log);
  const baseArchive = ensureBaseArchive(log);
  const runDir = join(STATE, `vitest-${process.pid}`);
  const registry = await startRegistry(runDir);
  const baseRepository = "parallels-test/python";
  const baseTag = `${BASE_PYTHON}-debian-bookworm`;
  const state = containerState(join(runDir, "setup-containers"), [registry.host]);
  try {
    putBaseImage(baseArchive, `docker://${registry.host}/${baseRepository}:${baseTag}`, state.env);
  } finally {
    removeContainerState(state);
  }
  project.provide("images", { registry: registry.host, baseRepository, baseTag, baseArchive, runDir });
  return async () => {
    await registry.stop();
    await rm(runDir, { recursive: true, force: true });
  };
}
