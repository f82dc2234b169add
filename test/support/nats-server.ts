/**
 * A real nats-server for tests: operator mode with the keys and config of scripts/nats/setup.ts,
 * on free 127.0.0.1 ports, state in a temp dir (or a given one). `restart()` keeps the state
 * (resolver JWTs, JetStream data) and the ports — for fault tests.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { freePort } from "../../scripts/local/ports";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launchNats } from "../../scripts/nats/launch";
import type { NatsSecrets, NatsSetupResult } from "../../scripts/nats/setup";
import { findNatsServerBinary, type NatsServerProcess, natsServerVersion } from "../../scripts/nats/server";

export interface TestNatsServer {
  /** `nats://127.0.0.1:<port>` */
  url: string;
  /** `ws://127.0.0.1:<wsPort>` (no TLS) */
  wsUrl: string;
  /** `http://127.0.0.1:<httpPort>` (monitoring: /healthz, /varz, /connz …) */
  monitorUrl: string;
  /** The control plane's Worker secrets for this server. */
  secrets: NatsSecrets;
  /** Everything setup.ts produced (keys, paths). */
  setup: NatsSetupResult;
  stateDir: string;
  /** nats-server version, e.g. `2.15.1`. */
  version: string;
  binary: string;
  logFile: string;
  /** Stops the server (SIGTERM) and removes the state dir if this helper created it. */
  stop(): Promise<void>;
  /** Stops (SIGTERM, or SIGKILL with `{ kill: true }`) and starts again with the same state and ports. */
  restart(opts?: { kill?: boolean }): Promise<void>;
}

export { freePort };

/**
 * Starts nats-server. With `stateDir`, keys already there are reused (credentials minted before
 * stay valid); without, a temp dir is created and removed by `stop()`.
 */
export async function startTestNatsServer(opts: { stateDir?: string } = {}): Promise<TestNatsServer> {
  const binary = findNatsServerBinary();
  const ownDir = !opts.stateDir;
  const stateDir = opts.stateDir ?? (await mkdtemp(join(tmpdir(), "parallels-nats-")));
  const logFile = join(stateDir, "nats-server.log");
  const launched = await launchNats({ stateDir, ports: "free", logFile, binary }).catch(async (e) => {
    if (ownDir) await rm(stateDir, { recursive: true, force: true });
    throw e;
  });
  const { setup, start } = launched;
  let proc: NatsServerProcess | undefined = launched.process;
  return {
    url: setup.url,
    wsUrl: setup.wsUrl,
    monitorUrl: setup.monitorUrl,
    secrets: setup.secrets,
    setup,
    stateDir,
    version: natsServerVersion(binary),
    binary,
    logFile,
    async stop() {
      await proc?.stop();
      proc = undefined;
      if (ownDir) await rm(stateDir, { recursive: true, force: true });
    },
    async restart(r = {}) {
      if (proc) await (r.kill ? proc.kill() : proc.stop());
      proc = undefined;
      proc = await start();
    },
  };
}
