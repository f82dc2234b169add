/**
 * @module
 * `--containers podman`: each partition runs in the step's image with `podman run`, the way
 * `mlflow run` runs a docker_env project (`docker run --rm`, the project's `volumes` as `-v`, its
 * `environment` as `-e`, MLflow's variables), so the embedded default runs the exact images a
 * cluster runs. The attempt's folder (inputs, outputs, the partition's manifest) is mounted at
 * the same path, so every path the step is given means the same inside; the projects root is
 * mounted read-only likewise (local `path` parameters). The host network: the step reaches
 * MLflow on this machine's 127.0.0.1, as the host does.
 */
import { type DockerEnv, shlexQuote } from "../../../../proto/mlproject";
import { PROJECT_DIR } from "../../../../proto/images";
import type { StepImages } from "../shared/images";
import { AttemptFailure } from "../shared/errors";

export interface LocalContainers extends StepImages {
  /** podman (default `podman` on the PATH). */
  podmanBin?: string;
  /** The environment podman runs with (the container configuration variables); default the agent's. */
  env?: NodeJS.ProcessEnv;
  /** Registries reached over plain HTTP (`host:port`). */
  plainHttp?: readonly string[];
}

/** A container name for a partition: unique per attempt and index, podman's characters only. */
export function containerName(attemptKey: string, index: number): string {
  return `parallels-${attemptKey.replace(/[^A-Za-z0-9_.-]/g, "_")}-p${index}`.slice(0, 200);
}

export interface PodmanRunInput {
  podman: string;
  name: string;
  image: string;
  command: string;
  /** Mounted read-write at the same path (the attempt's folder). */
  attemptDir: string;
  /** Mounted read-only at the same path. */
  readOnlyDirs: readonly string[];
  /** Names of the variables the step gets (their values are in podman's own environment: `-e NAME`). */
  envNames: readonly string[];
  /** The docker_env's `volumes` (`host:container[:opts]`), as `mlflow run` passes them. */
  volumes: readonly string[];
  plainHttp: boolean;
  /** Run as this `uid:gid` (rootless podman keeps the user's id: `--userns=keep-id`). */
  user?: string;
}

/** The `podman run` arguments of one partition (the command runs with bash when the image has it, as MLflow's docker backend runs it, else sh). */
export function podmanRunArgs(i: PodmanRunInput): string[] {
  const inner = 'if command -v bash >/dev/null 2>&1; then exec bash -c "$0"; else exec sh -c "$0"; fi';
  return [
    "run",
    "--rm",
    "--replace",
    "--name",
    i.name,
    "--network=host",
    "--pull=missing",
    ...(i.plainHttp ? ["--tls-verify=false"] : []),
    ...(i.user ? ["--userns=keep-id", "--user", i.user] : []),
    "-v",
    `${i.attemptDir}:${i.attemptDir}`,
    ...i.readOnlyDirs.flatMap((d) => ["-v", `${d}:${d}:ro`]),
    ...i.volumes.flatMap((v) => ["-v", v]),
    ...i.envNames.flatMap((n) => ["-e", n]),
    "-w",
    PROJECT_DIR,
    i.image,
    "sh",
    "-c",
    inner,
    i.command,
  ];
}

/** The shell command the partition's wrapper runs: podman with those arguments. */
export function podmanCommand(i: PodmanRunInput): string {
  return ["exec", i.podman, ...podmanRunArgs(i)].map((a, n) => (n < 2 ? a : shlexQuote(a))).join(" ");
}

/**
 * A docker_env's `environment` as `mlflow run` applies it: `[NAME, value]` sets a variable,
 * `NAME` copies it from the launcher's environment and fails the run when it is not set there.
 */
export function dockerEnvVariables(env: DockerEnv | null | undefined, launcher: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of env?.environment ?? []) {
    if (Array.isArray(entry)) out[String(entry[0])] = String(entry[1]);
    else {
      const name = String(entry);
      const value = launcher[name];
      if (value === undefined) {
        throw new AttemptFailure(`This project expects the ${name} environment variables to be set on the machine running the project, but ${name} was not found.`);
      }
      out[name] = value;
    }
  }
  return out;
}
