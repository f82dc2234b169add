/**
 * The machine's container tools for the image tests, the bench and `--containers podman`:
 * Debian's buildah, podman, skopeo, runc, docker-registry (the CNCF distribution registry) and
 * debootstrap. Installed on first use — `apt-get update`, then `apt-get install`, as root, once —
 * by whoever needs them (the test's own set-up, the demo), never by a hidden CI step.
 */
import { spawnSync } from "node:child_process";

export const CONTAINER_PACKAGES = ["buildah", "podman", "skopeo", "runc", "docker-registry", "debootstrap"] as const;
/** The program each package gives. */
const PROGRAMS: Record<(typeof CONTAINER_PACKAGES)[number], string> = {
  buildah: "buildah",
  podman: "podman",
  skopeo: "skopeo",
  runc: "runc",
  "docker-registry": "docker-registry",
  debootstrap: "debootstrap",
};

const has = (program: string) => spawnSync("sh", ["-c", `command -v ${program}`], { stdio: "ignore", env: { ...process.env, PATH: `${process.env.PATH ?? ""}:/usr/sbin:/sbin` } }).status === 0;

/** Packages whose program is missing. */
export function missingContainerTools(): string[] {
  return CONTAINER_PACKAGES.filter((p) => !has(PROGRAMS[p]));
}

/** Installs what is missing (root only; otherwise says what to run). Resolves once everything is there. */
export function ensureContainerTools(log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): void {
  const missing = missingContainerTools();
  if (missing.length === 0) return;
  const command = `apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing.join(" ")}`;
  if (process.getuid?.() !== 0) throw new Error(`the container tools ${missing.join(", ")} are missing; as root, run: ${command}`);
  log(`[images] installing ${missing.join(", ")} from Debian (apt-get update, apt-get install; once, about 30 s)`);
  const t0 = Date.now();
  for (const args of [
    ["update", "-qq"],
    ["install", "-y", "-qq", "--no-install-recommends", ...missing],
  ]) {
    const r = spawnSync("apt-get", args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" }, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`apt-get ${args.join(" ")} failed (${r.status}):\n${(r.stderr || r.stdout).trim().split("\n").slice(-15).join("\n")}`);
  }
  const still = missingContainerTools();
  if (still.length) throw new Error(`after apt-get install, still missing: ${still.join(", ")}`);
  log(`[images] installed in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}
