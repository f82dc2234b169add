/**
 * The machine's tools for the hybrid tests (an on-prem site behind a proxy): Debian's tinyproxy
 * (the site's HTTP(S) proxy), socat (the site's only wire to it, and the TLS edge before NATS's
 * WebSocket and the control plane), iproute2 (`ip netns`: the site) and openssl (the test CA).
 * Installed on first use by the suite's own set-up, never by a hidden CI step (scripts/debian/apt.ts).
 */
import { type DebianTools, ensurePackages, missingPackages } from "../debian/apt";

const HYBRID_TOOLS: DebianTools = {
  packages: { tinyproxy: "tinyproxy", socat: "socat", iproute2: "ip", openssl: "openssl" },
  what: "the hybrid tests' tools",
  prefix: "[hybrid]",
  about: "about 20 s",
};

/** Packages whose program is missing. */
export const missingHybridTools = (): string[] => missingPackages(HYBRID_TOOLS);

/** Installs what is missing (root only; otherwise says what to run). Returns once everything is there. */
export const ensureHybridTools = (log?: (line: string) => void): void => ensurePackages(HYBRID_TOOLS, log);
