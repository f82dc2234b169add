/**
 * Container state kept in one folder, through the environment only: buildah, podman and skopeo
 * read `CONTAINERS_STORAGE_CONF`, `CONTAINERS_REGISTRIES_CONF` and `CONTAINERS_CONF` (and write
 * temporary files to `TMPDIR`), so nothing global is touched — not /var/lib/containers, not
 * /etc/containers. Three host settings without which this machine kind fails (measured):
 * runc, not crun (crun refuses the hybrid cgroup layout); explicit ulimits (podman's default
 * 1048576 open files exceed the host's hard limit without CAP_SYS_RESOURCE); cgroupfs.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface ContainerState {
  dir: string;
  /** The environment buildah, podman and skopeo run with (process.env plus the four variables). */
  env: NodeJS.ProcessEnv;
  /** Registries reached over plain HTTP (127.0.0.1 registries of the tests). */
  insecureRegistries: string[];
}

/** Writes the configuration files below `dir`; `insecureRegistries` are `host:port` reached over HTTP. */
export function containerState(dir: string, insecureRegistries: string[] = []): ContainerState {
  for (const d of ["run", "storage", "tmp"]) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, "storage.conf"), ["[storage]", 'driver = "overlay"', `runroot = "${join(dir, "run")}"`, `graphroot = "${join(dir, "storage")}"`, ""].join("\n"));
  writeFileSync(
    join(dir, "registries.conf"),
    [
      // Nothing is pulled by a short name: every image reference names its registry.
      "unqualified-search-registries = []",
      'short-name-mode = "enforcing"',
      ...insecureRegistries.flatMap((r) => ["[[registry]]", `location = "${r}"`, "insecure = true"]),
      "",
    ].join("\n"),
  );
  writeFileSync(
    join(dir, "containers.conf"),
    ["[containers]", 'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]', "[engine]", 'runtime = "runc"', 'cgroup_manager = "cgroupfs"', ""].join("\n"),
  );
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CONTAINERS_STORAGE_CONF: join(dir, "storage.conf"),
    CONTAINERS_REGISTRIES_CONF: join(dir, "registries.conf"),
    CONTAINERS_CONF: join(dir, "containers.conf"),
    TMPDIR: join(dir, "tmp"),
  };
  return { dir, env, insecureRegistries };
}

/** Removes the state: working containers of failed builds, containers, storage (its mounts released first). */
export function removeContainerState(state: ContainerState): void {
  spawnSync("buildah", ["rm", "--all"], { env: state.env, stdio: "ignore" });
  spawnSync("podman", ["rm", "-af"], { env: state.env, stdio: "ignore" });
  // Overlay mounts left below the folder (a killed build) go before the files.
  let mounts: string[] = [];
  try {
    mounts = readFileSync("/proc/mounts", "utf8")
      .split("\n")
      .map((l) => l.split(" ")[1] ?? "")
      .filter((m) => m.startsWith(`${state.dir}/`))
      .sort((a, b) => b.length - a.length);
  } catch {
    /* not Linux */
  }
  for (const m of mounts) spawnSync("umount", ["-l", m], { stdio: "ignore" });
  rmSync(state.dir, { recursive: true, force: true });
}
