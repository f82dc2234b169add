/**
 * How the rest of the control plane reaches NATS: `publisherFor(env)` gives the Durable Object
 * holding the connection (or null when NATS is not configured here), `natsMinter(env)` the keys
 * that sign agent credentials (imported once per isolate).
 */
import type { Env } from "../env";
import { createNatsMinter, type NatsMinter } from "../nats";
import type { Publisher } from "./interface";

export type { Publisher } from "./interface";
export { NatsPublisher } from "./durable_object";

/** One publisher for the whole control plane: one connection, one outbox drainer. */
const PUBLISHER_NAME = "nats";

export function natsConfigured(env: Env): boolean {
  return Boolean(env.NATS_PUBLISHER && env.NATS_WS_URL && env.NATS_CONTROL_USER_JWT && env.NATS_CONTROL_USER_SEED);
}

export function publisherFor(env: Env): Publisher | null {
  if (!natsConfigured(env)) return null;
  return env.NATS_PUBLISHER!.get(env.NATS_PUBLISHER!.idFromName(PUBLISHER_NAME)) as unknown as Publisher;
}

let minter: { key: string; value: Promise<NatsMinter> } | undefined;

export async function natsMinter(env: Env): Promise<NatsMinter | null> {
  if (!env.NATS_ACCOUNT_SIGNING_SEED || !env.NATS_APP_ACCOUNT) return null;
  const key = `${env.NATS_APP_ACCOUNT}:${env.NATS_ACCOUNT_SIGNING_SEED.length}`;
  if (!minter || minter.key !== key) {
    minter = {
      key,
      value: createNatsMinter({
        accountSigningSeed: env.NATS_ACCOUNT_SIGNING_SEED,
        appAccount: env.NATS_APP_ACCOUNT,
        ...(env.NATS_OPERATOR_SIGNING_SEED ? { operatorSigningSeed: env.NATS_OPERATOR_SIGNING_SEED } : {}),
      }),
    };
  }
  return minter.value;
}
