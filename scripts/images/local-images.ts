/**
 * `--containers podman` on the embedded default (`npm run demo -- --containers podman`, the
 * bench): Debian's container tools (installed on first use), a container state of its own below
 * the state dir, a real registry on 127.0.0.1 — the embedded default's "cluster registry" — and
 * the Debian-made Python base pushed there under the name the Dockerfile generator asks for.
 * Returns the agent's flags and environment for it: steps then run in exactly the images a
 * cluster would build and run.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { BASE_PYTHON, ensureBaseArchive, putBaseImage } from "./base-image";
import { type ContainerState, containerState } from "./containers";
import { startRegistry, type TestRegistry } from "./registry";
import { ensureContainerTools } from "./tools";

export interface LocalImages {
  registry: TestRegistry;
  state: ContainerState;
  /** Flags of the agent. */
  agentArgs: string[];
  /** Environment of the agent (the container configuration variables). */
  agentEnv: Record<string, string>;
  stop(): Promise<void>;
}

/** The default port of the embedded default's registry (5000 is MLflow's). */
export const LOCAL_REGISTRY_PORT = 5002;

export async function startLocalImages(stateDir: string, opts: { freePorts?: boolean; log?: (line: string) => void } = {}): Promise<LocalImages> {
  const log = opts.log ?? ((l: string) => console.log(l));
  ensureContainerTools(log);
  const archive = ensureBaseArchive(log);
  const state = containerState(join(stateDir, "containers"));
  const registry = await startRegistry(join(stateDir, "registry"), "registry", opts.freePorts ? undefined : LOCAL_REGISTRY_PORT);
  // The registry of a state dir is its own (`insecure` = plain HTTP on 127.0.0.1).
  const withRegistry = containerState(state.dir, [registry.host]);
  const baseRepository = "parallels-base/python";
  const baseTag = `${BASE_PYTHON}-debian-bookworm`;
  putBaseImage(archive, `docker://${registry.host}/${baseRepository}:${baseTag}`, withRegistry.env);
  const bases = { registry: registry.host, pythonRepository: baseRepository, pythonTag: "{minor}-debian-bookworm", defaultPython: BASE_PYTHON };
  const hostCa = "/etc/ssl/certs/ca-certificates.crt";
  const agentEnv: Record<string, string> = {};
  for (const k of ["CONTAINERS_STORAGE_CONF", "CONTAINERS_REGISTRIES_CONF", "CONTAINERS_CONF", "TMPDIR"] as const) agentEnv[k] = withRegistry.env[k]!;
  return {
    registry,
    state: withRegistry,
    agentArgs: [
      "--containers",
      "podman",
      "--image-registry",
      registry.host,
      "--image-registry-plain-http",
      "--base-images",
      JSON.stringify(bases),
      // This machine reaches the package index through a TLS-inspecting proxy whose CA is only in the host's bundle.
      ...(existsSync(hostCa) ? ["--extra-ca-bundle", hostCa] : []),
    ],
    agentEnv,
    stop: () => registry.stop(),
  };
}
