// The WebCrypto minting module (control/src/nats) against the reference libraries, signing the
// contract of proto/nats.
import * as natsJwt from "@nats-io/jwt";
import * as nkeys from "@nats-io/nkeys";
import { describe, expect, it } from "vitest";
import { agentPermissions, appAccountNats, assertClusterId } from "../../proto/nats";
import {
  claimsUpdateRequest,
  createNatsMinter,
  decodeJwt,
  decodePublicKey,
  decodeSeed,
  encodePublicKey,
  encodeSeed,
  importSeed,
  mintAgentUserJwt,
  parseClaimsUpdateResponse,
  revocationList,
  verifyJwt,
} from "../../control/src/nats";

const te = new TextEncoder();
const seedOf = (kp: nkeys.KeyPair) => new TextDecoder().decode(kp.getSeed());
const withoutIatJti = ({ iat: _iat, jti: _jti, ...rest }: Record<string, unknown>) => rest;

describe("nkeys on Web Crypto", () => {
  it("decodes seeds and encodes public keys exactly as @nats-io/nkeys", async () => {
    for (const make of [nkeys.createUser, nkeys.createAccount, nkeys.createOperator]) {
      for (let i = 0; i < 5; i++) {
        const kp = make();
        const seed = seedOf(kp);
        const signer = await importSeed(seed);
        expect(signer.publicKey).toBe(kp.getPublicKey());
        const { role, seed: raw } = decodeSeed(seed);
        expect(encodeSeed(role, raw)).toBe(seed);
        expect(encodePublicKey(role, decodePublicKey(kp.getPublicKey()).publicKey)).toBe(kp.getPublicKey());
        const msg = te.encode(`message ${i}`);
        expect(kp.verify(msg, await signer.sign(msg))).toBe(true);
      }
    }
  });

  it("rejects corrupted keys, wrong roles and bad checksums", async () => {
    const user = nkeys.createUser();
    const pub = user.getPublicKey();
    const flipped = pub.slice(0, 10) + (pub[10] === "A" ? "B" : "A") + pub.slice(11);
    expect(() => decodePublicKey(flipped)).toThrow(/checksum/);
    expect(() => decodePublicKey(pub, "account")).toThrow(/expected a account nkey/);
    expect(() => decodePublicKey(pub.toLowerCase())).toThrow();
    expect(() => decodeSeed(pub)).toThrow();
    await expect(importSeed(seedOf(user), "account")).rejects.toThrow(/expected a account seed/);
  });
});

describe("agent user JWT", () => {
  const account = nkeys.createAccount();
  const signing = nkeys.createAccount();
  const app = account.getPublicKey();

  it("decodes to the same claims as one minted by @nats-io/jwt, and verifies", async () => {
    const agent = nkeys.createUser();
    const now = Date.now();
    const exp = Math.floor(now / 1000) + 3600;
    const signer = await importSeed(seedOf(signing), "account");
    const mine = await mintAgentUserJwt(signer, app, { clusterId: "c-01_X", userPublicKey: agent.getPublicKey(), ttlSeconds: 3600, now });
    const reference = await natsJwt.encodeUser("cluster-c-01_X", agent.getPublicKey(), app, agentPermissions("c-01_X"), { signer: signing, exp });
    const a = natsJwt.decode(mine) as unknown as Record<string, unknown>; // verifies the signature with nkeys
    const b = natsJwt.decode(reference) as unknown as Record<string, unknown>;
    expect(withoutIatJti(a)).toEqual(withoutIatJti(b));
    expect(await verifyJwt(reference)).toEqual(b);
    expect(a).toMatchObject({
      sub: agent.getPublicKey(),
      iss: signing.getPublicKey(),
      name: "cluster-c-01_X",
      exp,
      nats: {
        issuer_account: app,
        type: "user",
        version: 2,
        pub: {
          allow: ["$JS.API.CONSUMER.MSG.NEXT.WORK.agent-c-01_X", "$JS.ACK.WORK.agent-c-01_X.>", "$JS.API.CONSUMER.INFO.WORK.agent-c-01_X"],
        },
        sub: { allow: ["_INBOX_c-01_X.>"] },
      },
    });
  });

  it("validates the cluster id and the agent's key", async () => {
    const minter = await createNatsMinter({ accountSigningSeed: seedOf(signing), appAccount: app });
    const user = nkeys.createUser().getPublicKey();
    for (const bad of ["", "a.b", "a*", "a>", "a b", "ä", "x".repeat(129), "work.>"]) {
      await expect(minter.mintAgentJwt({ clusterId: bad, userPublicKey: user })).rejects.toThrow(/invalid cluster id/);
    }
    await expect(minter.mintAgentJwt({ clusterId: "A", userPublicKey: account.getPublicKey() })).rejects.toThrow(/user nkey/);
    await expect(minter.mintAgentJwt({ clusterId: "A", userPublicKey: "UNOTAKEY" })).rejects.toThrow();
    await expect(minter.mintAgentJwt({ clusterId: "A", userPublicKey: user, ttlSeconds: -1 })).rejects.toThrow();
    expect(assertClusterId("Ab_9-")).toBe("Ab_9-");
    await expect(createNatsMinter({ accountSigningSeed: seedOf(nkeys.createUser()), appAccount: app })).rejects.toThrow(/account seed/);
    // An agent without an operator seed cannot re-sign the account.
    await expect(minter.mintAccountJwt({ revocations: {} })).rejects.toThrow(/NATS_OPERATOR_SIGNING_SEED/);
  });

  it("never has an empty allow list; long expiry by default", async () => {
    const minter = await createNatsMinter({ accountSigningSeed: seedOf(signing), appAccount: app });
    const claims = decodeJwt<{ pub: { allow: string[] }; sub: { allow: string[] } }>(await minter.mintAgentJwt({ clusterId: "A", userPublicKey: nkeys.createUser().getPublicKey() }));
    expect(claims.nats.pub.allow.length).toBe(3);
    expect(claims.nats.sub.allow.length).toBe(1);
    expect(claims.exp! - claims.iat).toBe(365 * 24 * 3600);
  });
});

describe("APP account JWT with revocations", () => {
  it("re-signs the same account claims as setup, plus the full revocation list", async () => {
    const opSigning = nkeys.createOperator();
    const app = nkeys.createAccount();
    const appSigning = nkeys.createAccount();
    const setupJwt = await natsJwt.encodeAccount("APP", app.getPublicKey(), appAccountNats([appSigning.getPublicKey()]), { signer: opSigning });
    const minter = await createNatsMinter({
      accountSigningSeed: seedOf(appSigning),
      appAccount: app.getPublicKey(),
      operatorSigningSeed: seedOf(opSigning),
    });
    const setupClaims = natsJwt.decode(setupJwt) as unknown as Record<string, unknown>;
    const same = natsJwt.decode(await minter.mintAccountJwt({ revocations: {} })) as unknown as Record<string, unknown>;
    expect(withoutIatJti(same)).toEqual(withoutIatJti(setupClaims));

    const [u1, u2] = [nkeys.createUser().getPublicKey(), nkeys.createUser().getPublicKey()];
    const list = revocationList([
      { publicKey: u1, revokedAt: 1_700_000_000_001 },
      { publicKey: u2, revokedAt: 1_700_000_500_000 },
    ]);
    expect(list).toEqual({ [u1]: 1_700_000_001, [u2]: 1_700_000_500 });
    const after = (setupClaims.iat as number) + 100;
    const revoked = await verifyJwt<{ revocations: Record<string, number>; limits: Record<string, number> }>(await minter.mintAccountJwt({ revocations: list, after }));
    expect(revoked.iat).toBeGreaterThan(after);
    expect(revoked.iss).toBe(opSigning.getPublicKey());
    expect(revoked.sub).toBe(app.getPublicKey());
    expect(revoked.nats.revocations).toEqual(list);
    expect(revoked.nats.limits).toMatchObject({ mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 });
    await expect(minter.mintAccountJwt({ revocations: { [app.getPublicKey()]: 1 } })).rejects.toThrow(/not a user public key/);
  });

  it("builds the claims update request and reads the answers", () => {
    const req = claimsUpdateRequest("a.b.c");
    expect(req.subject).toBe("$SYS.REQ.CLAIMS.UPDATE");
    expect(new TextDecoder().decode(req.payload)).toBe("a.b.c");
    expect(parseClaimsUpdateResponse('{"data":{"account":"AX","code":200,"message":"jwt updated"}}')).toEqual({
      ok: true,
      code: 200,
      message: "jwt updated",
      account: "AX",
    });
    expect(parseClaimsUpdateResponse('{"error":{"account":"AX","code":400,"description":"bad"}}')).toMatchObject({ ok: false, code: 400 });
    expect(parseClaimsUpdateResponse("nope").ok).toBe(false);
  });
});
