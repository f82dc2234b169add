/**
 * Minting an agent's NATS user JWT — done at every registration, inside the Worker — timed one
 * mint at a time in this Node process: our WebCrypto Ed25519 minter (control/src/nats) and, for
 * comparison, the reference library @nats-io/jwt. Correctness is test/node/nats-mint.test.ts's.
 */
import * as natsJwt from "@nats-io/jwt";
import * as nkeys from "@nats-io/nkeys";
import { createNatsMinter, encodePublicKey } from "../../control/src/nats";
import { agentPermissions } from "../../proto/nats";
import { type Sample, summarize } from "./stats";

const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 40) * 10;
/** The reference takes ~25 ms a mint: fewer samples. */
const REFERENCE_SAMPLES = Math.max(20, SAMPLES / 10);
const WARM_UP = 20;

/** A fresh user public key per mint: the control plane never sees an agent's seed. */
const userKeys = (n: number) => Array.from({ length: n }, () => encodePublicKey("user", crypto.getRandomValues(new Uint8Array(32))));

async function timeEach(keys: string[], mint: (userPublicKey: string) => Promise<string>): Promise<Sample[]> {
  for (const u of keys.slice(0, WARM_UP)) await mint(u);
  const samples: Sample[] = [];
  for (const u of keys.slice(WARM_UP)) {
    const start = performance.now();
    await mint(u);
    const ms = performance.now() - start;
    samples.push({ wall: ms, cpu: ms, d1: 0 });
  }
  return samples;
}

export async function benchNatsMint() {
  const account = nkeys.createAccount();
  const signing = nkeys.createAccount();
  const app = account.getPublicKey();
  const minter = await createNatsMinter({ accountSigningSeed: new TextDecoder().decode(signing.getSeed()), appAccount: app });
  const ours = await timeEach(userKeys(WARM_UP + SAMPLES), (u) => minter.mintAgentJwt({ clusterId: "bench", userPublicKey: u }));
  const reference = await timeEach(userKeys(WARM_UP + REFERENCE_SAMPLES), (u) => natsJwt.encodeUser("cluster-bench", u, app, agentPermissions("bench"), { signer: signing }));
  const row = (label: string, target: string, samples: Sample[]) => ({ ...summarize(label, target, samples), d1: "—" });
  return [row("mint agent NATS JWT, WebCrypto (Node)", "< 1 ms", ours), row("mint agent NATS JWT, @nats-io/jwt (reference)", "", reference)];
}
