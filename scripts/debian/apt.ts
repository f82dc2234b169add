/**
 * Debian packages a suite needs on this machine, installed on first use — `apt-get update`, then
 * `apt-get install`, as root, once — by the suite's own set-up, never by a hidden CI step. One
 * home for how: the image tools (scripts/images/tools.ts) and the hybrid tests' tools
 * (scripts/hybrid/tools.ts) name their packages, the program each gives and how long it takes.
 */
import { spawnSync } from "node:child_process";

export interface DebianTools {
  /** Debian package → the program it gives (what says it is installed). */
  packages: Readonly<Record<string, string>>;
  /** Who needs them, for messages: "the container tools". */
  what: string;
  /** Log prefix: "[images]". */
  prefix: string;
  /** How long an install usually takes, for the progress line: "about 30 s". */
  about: string;
}

/** A program on PATH (the sbin folders too: `ip` lives there and root's PATH may lack them). */
const has = (program: string) => spawnSync("sh", ["-c", `command -v ${program}`], { stdio: "ignore", env: { ...process.env, PATH: `${process.env.PATH ?? ""}:/usr/sbin:/sbin` } }).status === 0;

/** Packages whose program is missing. */
export function missingPackages(tools: DebianTools): string[] {
  return Object.entries(tools.packages)
    .filter(([, program]) => !has(program))
    .map(([pkg]) => pkg);
}

/** Installs what is missing (root only; otherwise says what to run). Returns once everything is there. */
export function ensurePackages(tools: DebianTools, log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): void {
  const missing = missingPackages(tools);
  if (missing.length === 0) return;
  const command = `apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing.join(" ")}`;
  if (process.getuid?.() !== 0) throw new Error(`${tools.what} ${missing.join(", ")} are missing; as root, run: ${command}`);
  log(`${tools.prefix} installing ${missing.join(", ")} from Debian (apt-get update, apt-get install; once, ${tools.about})`);
  const t0 = Date.now();
  for (const args of [
    ["update", "-qq"],
    ["install", "-y", "-qq", "--no-install-recommends", ...missing],
  ]) {
    const r = spawnSync("apt-get", args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" }, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`apt-get ${args.join(" ")} failed (${r.status}):\n${(r.stderr || r.stdout).trim().split("\n").slice(-15).join("\n")}`);
  }
  const still = missingPackages(tools);
  if (still.length) throw new Error(`after apt-get install, still missing: ${still.join(", ")}`);
  log(`${tools.prefix} installed in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}
