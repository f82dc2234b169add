/**
 * The machine's container tools for the image tests, the bench and `--containers podman`:
 * Debian's buildah, podman, skopeo, runc, docker-registry (the CNCF distribution registry) and
 * debootstrap. Installed on first use by whoever needs them (the test's own set-up, the demo),
 * never by a hidden CI step (scripts/debian/apt.ts).
 */
import { type DebianTools, ensurePackages, missingPackages } from "../debian/apt";

export const CONTAINER_PACKAGES = ["buildah", "podman", "skopeo", "runc", "docker-registry", "debootstrap"] as const;

const CONTAINER_TOOLS: DebianTools = {
  // Each package gives the program of its own name.
  packages: Object.fromEntries(CONTAINER_PACKAGES.map((p) => [p, p])),
  what: "the container tools",
  prefix: "[images]",
  about: "about 30 s",
};

/** Packages whose program is missing. */
export const missingContainerTools = (): string[] => missingPackages(CONTAINER_TOOLS);

/** Installs what is missing (root only; otherwise says what to run). Returns once everything is there. */
export const ensureContainerTools = (log?: (line: string) => void): void => ensurePackages(CONTAINER_TOOLS, log);
