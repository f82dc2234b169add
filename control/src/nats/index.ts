/**
 * NATS credentials for the control plane (runs in workerd; Web Crypto only). The contract they
 * grant — names, stream and consumer settings, permissions, the APP account's claims — is
 * proto/nats; this folder signs it.
 *
 * - `nkeys`: nkey text encoding, Ed25519 signing keys imported from seeds.
 * - `jwt`: NATS v2 JWT signing, decoding and verification.
 * - `credentials`: agent user JWTs, the APP account JWT with its revocation list, the
 *   `$SYS.REQ.CLAIMS.UPDATE` push, and {@link createNatsMinter} to import keys once.
 */
export * from "./credentials";
export * from "./jwt";
export * from "./nkeys";
