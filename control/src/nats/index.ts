/**
 * NATS security groundwork for the control plane (runs in workerd; Web Crypto only).
 *
 * - `nkeys`: nkey text encoding, Ed25519 signing keys imported from seeds.
 * - `jwt`: NATS v2 JWT signing, decoding and verification.
 * - `credentials`: agent user JWTs, the APP account JWT with its revocation list, the
 *   `$SYS.REQ.CLAIMS.UPDATE` push, and {@link createNatsMinter} to import keys once.
 * - `work`: stream `WORK`, subjects and the per-cluster consumer (ARCHITECTURE §4).
 */
export * from "./credentials";
export * from "./ids";
export * from "./jwt";
export * from "./nkeys";
export * from "./work";
