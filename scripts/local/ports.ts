import { readFileSync } from "node:fs";
import { createServer } from "node:net";

/**
 * Free ports are picked *below* the kernel's ephemeral range. A port from `listen(0)` comes from
 * that range, and every outgoing connection (a fetch, a NATS client, vitest's workers) takes its
 * local port from there too: between "released" and "bound by the server we start" such a port can
 * be taken by a client socket, and the server dies with "address already in use" (a CI flake we
 * had). Below the range only other listeners compete, and the bind check below sees them.
 */
const RANGE_LOW = 20_000;
const RANGE_HIGH = ephemeralLow() - 1;
/** Ports this process handed out, so two servers of one test never get the same one. */
const handedOut = new Set<number>();

function ephemeralLow(): number {
  try {
    const low = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > RANGE_LOW + 1_000) return low;
  } catch {
    /* not Linux: use Linux's default range */
  }
  return 32_768;
}

function bindable(port: number): Promise<boolean> {
  return new Promise((ok) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", () => ok(false));
    srv.listen({ port, host: "127.0.0.1", exclusive: true }, () => srv.close(() => ok(true)));
  });
}

/** A TCP port on 127.0.0.1 that nothing listens on, outside the ephemeral range. */
export async function freePort(): Promise<number> {
  for (let tries = 0; tries < 200; tries++) {
    const port = RANGE_LOW + Math.floor(Math.random() * (RANGE_HIGH - RANGE_LOW + 1));
    if (handedOut.has(port)) continue;
    if (await bindable(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free TCP port on 127.0.0.1 between ${RANGE_LOW} and ${RANGE_HIGH}`);
}

/** Whether a server's output says its port was taken (retry on other ports, don't give up). */
export function saysPortInUse(output: string): boolean {
  return /address already in use|EADDRINUSE|Address in use/i.test(output);
}
