// scripts/nats/launch.ts and scripts/local/ports.ts: a taken port is named in the error, and free
// ports come from outside the range that client sockets use.
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { freePort, PORT_RANGE } from "../../scripts/local/ports";
import { launchNats } from "../../scripts/nats/launch";
import { NatsStartError } from "../../scripts/nats/server";

const listen = (port: number) =>
  new Promise<Server>((ok, fail) => {
    const srv = createServer();
    srv.once("error", fail);
    srv.listen(port, "127.0.0.1", () => ok(srv));
  });

describe("launching nats-server", () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0)) await c();
  });
  /** A state dir removed after the test. */
  const stateDir = async (): Promise<string> => {
    const dir = await mkdtemp(join(tmpdir(), "parallels-nats-launch-"));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    return dir;
  };
  /** A port something else listens on for the rest of the test. */
  const takenPort = async () => {
    const port = await freePort();
    const blocker = await listen(port);
    cleanup.push(() => new Promise((r) => blocker.close(r)));
    return port;
  };

  it("hands out distinct ports outside the ephemeral range", async () => {
    const [ephLow, ephHigh] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number) as [number, number];
    expect(PORT_RANGE.high < ephLow || PORT_RANGE.low > ephHigh).toBe(true);
    const ports = await Promise.all(Array.from({ length: 50 }, () => freePort()));
    expect(new Set(ports).size).toBe(50);
    for (const p of ports) {
      expect(p).toBeGreaterThanOrEqual(PORT_RANGE.low);
      expect(p).toBeLessThanOrEqual(PORT_RANGE.high);
    }
  });

  it("fails with the server's own words when a fixed port is taken", async () => {
    const dir = await stateDir();
    const taken = await takenPort();
    const ports = { port: taken, wsPort: await freePort(), httpPort: await freePort() };
    const err = await launchNats({ stateDir: dir, ports }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(NatsStartError);
    expect((err as NatsStartError).portInUse).toBe(true);
    expect((err as Error).message).toMatch(new RegExp(`127\\.0\\.0\\.1:${taken}.*address already in use`, "s"));
  });

  it("on free ports, starts again on others when one was taken before nats-server bound it", async () => {
    const dir = await stateDir();
    const taken = await takenPort();
    let picks = 0;
    const nats = await launchNats({ stateDir: dir, ports: "free", pickPort: () => (picks++ === 0 ? Promise.resolve(taken) : freePort()) });
    cleanup.push(() => nats.process.stop());
    expect(picks).toBe(6); // three ports, twice
    expect(nats.setup.url).not.toContain(`:${taken}`);
    expect((await fetch(`${nats.setup.monitorUrl}/healthz`)).status).toBe(200);
    expect(readFileSync(join(dir, "nats-server.log"), "utf8")).toMatch(/address already in use/);
  });

  it("starts on free ports and answers on them", async () => {
    const dir = await stateDir();
    const nats = await launchNats({ stateDir: dir, ports: "free" });
    cleanup.push(() => nats.process.stop());
    const res = await fetch(`${nats.setup.monitorUrl}/healthz`);
    expect(res.status).toBe(200);
  });
});
