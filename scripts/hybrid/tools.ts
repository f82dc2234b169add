/**
 * The machine's tools for the hybrid tests (an on-prem site behind a proxy): Debian's tinyproxy
 * (the site's HTTP(S) proxy), socat (the site's only wire to it, and the TLS edge before NATS's
 * WebSocket and the control plane), iproute2 (`ip netns`: the site) and openssl (the test CA).
 * Installed on first use — `apt-get update`, then `apt-get install`, as root, once — by the
 * suite's own set-up, never by a hidden CI step.
 */
import { spawnSync } from "node:child_process";

/** Debian package → the program it gives. */
const PACKAGES = { tinyproxy: "tinyproxy", socat: "socat", iproute2: "ip", openssl: "openssl" } as const;

const has = (program: string) => spawnSync("sh", ["-c", `command -v ${program}`], { stdio: "ignore", env: { ...process.env, PATH: `${process.env.PATH ?? ""}:/usr/sbin:/sbin` } }).status === 0;

/** Packages whose program is missing. */
export function missingHybridTools(): string[] {
  return Object.entries(PACKAGES)
    .filter(([, program]) => !has(program))
    .map(([pkg]) => pkg);
}

/** Installs what is missing (root only; otherwise says what to run). Returns once everything is there. */
export function ensureHybridTools(log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): void {
  const missing = missingHybridTools();
  if (missing.length === 0) return;
  const command = `apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing.join(" ")}`;
  if (process.getuid?.() !== 0) throw new Error(`the hybrid tests' tools ${missing.join(", ")} are missing; as root, run: ${command}`);
  log(`[hybrid] installing ${missing.join(", ")} from Debian (apt-get update, apt-get install; once, about 20 s)`);
  const t0 = Date.now();
  for (const args of [
    ["update", "-qq"],
    ["install", "-y", "-qq", "--no-install-recommends", ...missing],
  ]) {
    const r = spawnSync("apt-get", args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" }, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`apt-get ${args.join(" ")} failed (${r.status}):\n${(r.stderr || r.stdout).trim().split("\n").slice(-15).join("\n")}`);
  }
  const still = missingHybridTools();
  if (still.length) throw new Error(`after apt-get install, still missing: ${still.join(", ")}`);
  log(`[hybrid] installed in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}
