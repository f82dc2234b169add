/**
 * A Python base image made from Debian packages, without pulling any image: `debootstrap
 * --variant=minbase bookworm`, then python3 and python3-venv installed in it, imported with
 * podman as one layer, and kept as an OCI archive cached by key outside the clone
 * (`~/.cache/mlflow-parallels/images/<key>/python-base.oci.tar`; ~80 MB). Tests, the bench and
 * `npm run demo -- --containers podman` put it under the name the Dockerfile generator asks for
 * (the base mapping points there): in a registry, or in a local container storage.
 *
 * Cold: about 70 s (debootstrap 45 s, apt 17 s, import 8 s); warm: the archive is there.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { containerState, removeContainerState } from "./containers";

/** Debian suite, the packages in it, and the recipe's version: the cache key. */
export const BASE_SUITE = "bookworm";
export const BASE_PACKAGES = ["python3", "python3-venv"] as const;
/** bookworm's python3 is 3.11 (3.11.2). */
export const BASE_PYTHON = "3.11";
const BASE_RECIPE = 1;

export const IMAGES_CACHE = join(process.env.MLFLOW_PARALLELS_CACHE ?? join(homedir(), ".cache/mlflow-parallels"), "images");

export function baseImageKey(): string {
  const h = createHash("sha256")
    .update(JSON.stringify({ suite: BASE_SUITE, packages: BASE_PACKAGES, recipe: BASE_RECIPE }))
    .digest("hex");
  return `python-${BASE_PYTHON}-debian-${BASE_SUITE}-${h.slice(0, 12)}`;
}

function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: Buffer } = {}): string {
  const r = spawnSync(cmd, args, { env: opts.env ?? process.env, encoding: "utf8", maxBuffer: 64 * 1024 * 1024, ...(opts.input ? { input: opts.input } : {}) });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status ?? r.signal}):\n${`${r.stderr}${r.stdout}`.trim().split("\n").slice(-15).join("\n")}`);
  return r.stdout;
}

/** The cached OCI archive of the base image, made on first use (root only). */
export function ensureBaseArchive(log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): string {
  const dir = join(IMAGES_CACHE, baseImageKey());
  const archive = join(dir, "python-base.oci.tar");
  if (existsSync(archive)) return archive;
  if (process.getuid?.() !== 0) throw new Error(`the base image ${archive} is not made yet; debootstrap needs root`);
  log(`[images] making the Python base image from Debian packages into ${dir} (debootstrap ${BASE_SUITE} + ${BASE_PACKAGES.join(" ")}; once, about 70 s)`);
  const t0 = Date.now();
  const work = join(dir, `work-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const rootfs = join(work, "rootfs");
  const state = containerState(join(work, "containers"));
  try {
    run("debootstrap", ["--variant=minbase", BASE_SUITE, rootfs]);
    run("mount", ["-t", "proc", "proc", join(rootfs, "proc")]);
    run("mount", ["--bind", "/dev", join(rootfs, "dev")]);
    try {
      run("chroot", [
        rootfs,
        "sh",
        "-c",
        `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${BASE_PACKAGES.join(" ")} >/dev/null && apt-get clean && rm -rf /var/lib/apt/lists/*`,
      ]);
    } finally {
      spawnSync("umount", [join(rootfs, "proc")]);
      spawnSync("umount", [join(rootfs, "dev")]);
    }
    const tar = spawnSync("tar", ["-C", rootfs, "-c", "."], { maxBuffer: 1024 * 1024 * 1024 });
    if (tar.status !== 0) throw new Error(`tar of the rootfs failed: ${tar.stderr}`);
    const local = "localhost/parallels-base/python:import";
    run("podman", ["import", "--change", 'CMD ["python3"]', "--change", "ENV LANG=C.UTF-8", "-", local], { env: state.env, input: tar.stdout });
    run("skopeo", ["copy", "--quiet", `containers-storage:${local}`, `oci-archive:${archive}.tmp:${local}`], { env: state.env });
    renameSync(`${archive}.tmp`, archive);
    log(`[images] base image made in ${((Date.now() - t0) / 1000).toFixed(0)} s: ${archive}`);
    return archive;
  } finally {
    removeContainerState(state);
    rmSync(work, { recursive: true, force: true });
  }
}

/** Copies the base image to `dest` (`docker://host:port/name:tag` or `containers-storage:name:tag`). */
export function putBaseImage(archive: string, dest: string, env: NodeJS.ProcessEnv): void {
  run("skopeo", ["copy", "--quiet", ...(dest.startsWith("docker://") ? ["--dest-tls-verify=false"] : []), `oci-archive:${archive}`, dest], { env });
}
