/**
 * How the rest of the control plane reaches NATS: `publisherFor(env)` gives the Durable Object
 * holding the connection (or null when NATS is not configured here), `natsMinter(env)` the keys
 * that sign agent credentials (imported once per isolate).
 */
import type { Env } from "../env";
import type { Publisher } from "./interface";

export type { Publisher } from "./interface";
export { NatsPublisher } from "./durable_object";
export { natsMinter } from "./minter";

/** One publisher for the whole control plane: one connection, one outbox drainer. */
const PUBLISHER_NAME = "nats";

export function natsConfigured(env: Env): boolean {
  return Boolean(env.NATS_PUBLISHER && env.NATS_WS_URL && env.NATS_CONTROL_USER_JWT && env.NATS_CONTROL_USER_SEED);
}

export function publisherFor(env: Env): Publisher | null {
  if (!natsConfigured(env)) return null;
  return env.NATS_PUBLISHER!.get(env.NATS_PUBLISHER!.idFromName(PUBLISHER_NAME)) as unknown as Publisher;
}
