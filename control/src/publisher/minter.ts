/** The keys that sign agent credentials and account updates, imported once per isolate. */
import type { Env } from "../env";
import { createNatsMinter, type NatsMinter } from "../nats";

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
