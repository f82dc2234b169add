import { readFileSync } from "node:fs";
import { createServer } from "node:net";

/**
 * Free ports are picked *outside* the kernel's ephemeral range. A port from `listen(0)` comes from
 * that range, and every outgoing connection (a fetch, a NATS client, vitest's workers) takes its
 * local port from there too: between "released" and "bound by the server we start" such a port can
 * be taken by a client socket, and the server dies with "address already in use" (a CI flake we
 * had). Outside the range only other listeners compete, and the bind check below sees them.
 */
/** At least this many ports below (or above) the ephemeral range, and above the well-known ones. */
const MIN_SPAN = 2_000;
export const PORT_RANGE: { readonly low: number; readonly high: number } = pickRange(ephemeralRange());
/** Ports this process handed out, so two servers of one test never get the same one. */
const handedOut = new Set<number>();

/** Linux's `ip_local_port_range`, or Linux's default elsewhere. */
function ephemeralRange(): [number, number] {
  try {
    const [low, high] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    if (Number.isInteger(low) && Number.isInteger(high) && low! <= high!) return [low!, high!];
  } catch {
    /* not Linux */
  }
  return [32_768, 60_999];
}

function pickRange([ephLow, ephHigh]: [number, number]): { low: number; high: number } {
  if (ephLow - 1 - 20_000 >= MIN_SPAN) return { low: 20_000, high: ephLow - 1 };
  if (65_535 - (ephHigh + 1) >= MIN_SPAN) return { low: ephHigh + 1, high: 65_535 };
  if (ephLow - 1 - 10_000 >= MIN_SPAN) return { low: 10_000, high: ephLow - 1 };
  // The ephemeral range covers nearly everything: share it (the retries on "in use" still help).
  return { low: 20_000, high: 65_535 };
}

function bindable(port: number): Promise<boolean> {
  return new Promise((ok) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", () => ok(false));
    srv.listen({ port, host: "127.0.0.1", exclusive: true }, () => srv.close(() => ok(true)));
  });
}

/** A TCP port on 127.0.0.1 that nothing listens on, in {@link PORT_RANGE}. */
export async function freePort(): Promise<number> {
  const { low, high } = PORT_RANGE;
  for (let tries = 0; tries < 200; tries++) {
    const port = low + Math.floor(Math.random() * (high - low + 1));
    if (handedOut.has(port)) continue;
    if (await bindable(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free TCP port on 127.0.0.1 between ${low} and ${high}`);
}

/** Whether a server's output says its port was taken (retry on other ports, don't give up). */
export function saysPortInUse(output: string): boolean {
  return /address already in use|EADDRINUSE|Address in use/i.test(output);
}
