/**
 * Setup + start in one step, for the embedded default and the tests: with `ports: "free"` the
 * server gets fresh ports, and if one was taken before nats-server bound it, setup runs again on
 * new ports (keys stay; only the config changes) instead of failing the whole run.
 */
import { join } from "node:path";
import { freePort } from "../local/ports";
import { type NatsSetupResult, setupNats } from "./setup";
import { findNatsServerBinary, NatsStartError, type NatsServerProcess, startNatsServer } from "./server";

export interface NatsPorts {
  port: number;
  wsPort: number;
  httpPort: number;
}

export interface LaunchNatsOptions {
  stateDir: string;
  ports: NatsPorts | "free";
  /** Default: `<stateDir>/nats-server.log`. */
  logFile?: string;
  binary?: string;
  /** Picks each free port (default `freePort`; tests hand out a taken one first). */
  pickPort?: () => Promise<number>;
}

export interface LaunchedNats {
  setup: NatsSetupResult;
  process: NatsServerProcess;
  /** Starts the server again with the same config (ports, keys, JetStream data). */
  start(): Promise<NatsServerProcess>;
}

const ATTEMPTS_ON_FREE_PORTS = 4;

export async function launchNats(opts: LaunchNatsOptions): Promise<LaunchedNats> {
  const binary = opts.binary ?? findNatsServerBinary();
  const logFile = opts.logFile ?? join(opts.stateDir, "nats-server.log");
  for (let attempt = 1; ; attempt++) {
    const pick = opts.pickPort ?? freePort;
    const ports = opts.ports === "free" ? { port: await pick(), wsPort: await pick(), httpPort: await pick() } : opts.ports;
    const setup = await setupNats({ stateDir: opts.stateDir, ...ports });
    const start = () => startNatsServer({ binary, configPath: setup.configPath, monitorUrl: setup.monitorUrl, logFile });
    try {
      return { setup, process: await start(), start };
    } catch (e) {
      const retry = opts.ports === "free" && e instanceof NatsStartError && e.portInUse && attempt < ATTEMPTS_ON_FREE_PORTS;
      if (!retry) throw e;
    }
  }
}
