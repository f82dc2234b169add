/**
 * The embedded default: every server the product needs, on this machine, on 127.0.0.1 —
 * nats-server (operator mode, JetStream, WebSocket), `mlflow server` (SQLite, serving artifacts)
 * and the control plane under `wrangler dev` wired to NATS. State persists under `stateDir`.
 * The agent is started by the caller (it needs a cluster's bootstrap token).
 */
import { join } from "node:path";
import { launchNats } from "../nats/launch";
import type { NatsServerProcess } from "../nats/server";
import { startControlPlane, type ControlPlane } from "./control-plane";
import { startMlflowServer, type MlflowTestServer } from "./mlflow-server";

export interface EmbeddedPorts {
  control: number;
  nats: number;
  natsWs: number;
  natsMonitor: number;
  mlflow: number;
}

/** The usual local ports; tests pass `ports: "free"`. */
export const DEFAULT_PORTS: EmbeddedPorts = { control: 8787, nats: 4222, natsWs: 4280, natsMonitor: 8222, mlflow: 5000 };

export interface Embedded {
  control: ControlPlane;
  /** The Worker vars the control plane runs with (to restart it the same way). */
  controlVars: Record<string, string>;
  mlflow: MlflowTestServer;
  natsUrl: string;
  nats: NatsServerProcess;
  adminToken: string;
  stateDir: string;
  /** Restarts nats-server with the same state (fault tests). */
  restartNats(opts?: { kill?: boolean }): Promise<void>;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  stateDir: string;
  adminToken: string;
  ports?: EmbeddedPorts | "free";
  /** Forward the control plane's log. */
  echo?: boolean;
  /** More Worker vars for the control plane (e.g. `CORS_ORIGINS` for a page in a browser). */
  vars?: Record<string, string>;
  /**
   * Fire wrangler.toml's Cron Trigger at each minute boundary (default true). A test that fires
   * it itself, at chosen times, turns it off so no real minute makes a run it did not ask for.
   */
  cronTriggers?: boolean;
}

export async function startEmbedded(opts: EmbeddedOptions): Promise<Embedded> {
  const ports: EmbeddedPorts | undefined = opts.ports === "free" ? undefined : (opts.ports ?? DEFAULT_PORTS);
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  };
  try {
    // nats-server and mlflow server first (in parallel): the control plane's vars name both.
    // Without a port, each picks a free one and retries on another if it is taken meanwhile.
    let nats: NatsServerProcess | undefined;
    stops.push(async () => nats?.stop());
    const [launched, mlflow] = await Promise.all([
      launchNats({
        stateDir: join(opts.stateDir, "nats"),
        ports: ports ? { port: ports.nats, wsPort: ports.natsWs, httpPort: ports.natsMonitor } : "free",
      }).then((l) => {
        nats = l.process;
        return l;
      }),
      startMlflowServer({ dir: join(opts.stateDir, "mlflow"), port: ports?.mlflow }).then((m) => {
        stops.push(() => m.stop());
        return m;
      }),
    ]);
    const natsSetup = launched.setup;
    const natsStart = launched.start;
    const controlVars = {
      PARALLELS_ADMIN_TOKEN: opts.adminToken,
      NATS_WS_URL: natsSetup.wsUrl,
      NATS_URL: natsSetup.url,
      MLFLOW_UI_URL: mlflow.url,
      MLFLOW_TRACKING_URI: mlflow.url,
      ...natsSetup.secrets,
      ...opts.vars,
    };
    const control = await startControlPlane({ stateDir: join(opts.stateDir, "control"), port: ports?.control, echo: opts.echo, vars: controlVars, cronTriggers: opts.cronTriggers ?? true });
    const embedded: Embedded = {
      control,
      controlVars,
      mlflow,
      natsUrl: natsSetup.url,
      get nats() {
        return nats!;
      },
      adminToken: opts.adminToken,
      stateDir: opts.stateDir,
      async restartNats(r = {}) {
        await (r.kill ? nats!.kill() : nats!.stop());
        nats = await natsStart();
      },
      stop: stopAll,
    };
    // The control plane may be replaced (restarted) by the caller: stop whichever runs last.
    stops.push(() => embedded.control.stop());
    return embedded;
  } catch (err) {
    await stopAll();
    throw err;
  }
}
