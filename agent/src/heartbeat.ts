/**
 * Heartbeats (ARCHITECTURE §5): every `heartbeatSeconds`, the agent tells the control plane it is
 * alive and how much it runs. Three missed beats and the cluster shows offline.
 */
import { availableParallelism, totalmem } from "node:os";
import type { Heartbeat, HeartbeatAnswer } from "../../proto/agent";
import { realSleep, type Sleep } from "./backoff";
import type { ControlPlaneClient } from "./control";
import { errInfo, type Logger } from "./log";
import type { Metrics } from "./metrics";

export interface HeartbeatOptions {
  client: ControlPlaneClient;
  credential: string;
  intervalSeconds: number;
  agentVersion: string;
  /** Attempts running now (`executor.running()`). */
  running: () => number;
  /** What the cluster offers; the local machine by default. */
  describe?: () => Pick<Heartbeat, "kubernetesVersion" | "allocatable"> & Partial<Pick<Heartbeat, "builder">>;
  logger: Logger;
  metrics?: Metrics;
  sleep?: Sleep;
  /** Each accepted beat's answer (e.g. where NATS is now). */
  onAnswer?: (answer: HeartbeatAnswer) => void | Promise<void>;
}

export const localMachine = (): Pick<Heartbeat, "kubernetesVersion" | "allocatable"> => ({
  kubernetesVersion: null,
  allocatable: { cpu: String(availableParallelism()), memory: `${Math.floor(totalmem() / 2 ** 20)}Mi`, gpu: 0 },
});

/** Beats at once, then every interval, until `signal` aborts. A failed beat is logged; the next one is on time. */
export async function runHeartbeats(o: HeartbeatOptions, signal: AbortSignal): Promise<void> {
  const sleep = o.sleep ?? realSleep;
  let failing = false;
  while (!signal.aborted) {
    try {
      const answer = await o.client.heartbeat(o.credential, { agentVersion: o.agentVersion, builder: null, ...(o.describe ?? localMachine)(), runningJobs: o.running() });
      if (failing) o.logger.info("heartbeats accepted again");
      failing = false;
      await o.onAnswer?.(answer);
    } catch (err) {
      o.metrics?.heartbeatsFailed.inc();
      o.logger.warn({ err: errInfo(err) }, "heartbeat failed");
      failing = true;
    }
    await sleep(o.intervalSeconds * 1000, signal);
  }
}
