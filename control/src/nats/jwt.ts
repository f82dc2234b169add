/**
 * NATS JWTs (v2, `alg: "ed25519-nkey"`) signed and verified with Web Crypto.
 *
 * Format: `base64url(header).base64url(claims).base64url(ed25519(header "." claims))`, header
 * `{"typ":"JWT","alg":"ed25519-nkey"}`. `jti` is a hash of the claims (as in the Go library, which
 * hashes with SHA-512/256; Web Crypto has no SHA-512/256, so SHA-256 — the server only needs it
 * unique per content).
 */
import { base64UrlToBytes, bytesToBase64Url } from "./base64url";
import { base32Encode, decodePublicKey, type NkeySigner, verifySignature } from "./nkeys";

export { bytesToBase64Url } from "./base64url";

/** Claims common to every NATS JWT; `nats` holds the type-specific part. */
export interface NatsClaims<N extends object = Record<string, unknown>> {
  jti: string;
  iat: number;
  iss: string;
  name: string;
  sub: string;
  aud?: string;
  exp?: number;
  nbf?: number;
  nats: N & { type: string; version: 2 };
}

const HEADER = { typ: "JWT", alg: "ed25519-nkey" } as const;
const encoder = new TextEncoder();

const HEADER_B64 = bytesToBase64Url(encoder.encode(JSON.stringify(HEADER)));

/**
 * Signs `claims` with `signer`: sets `iss` to the signer's public key, `iat` (seconds) and `jti`.
 * @param claims everything but `iss`, `iat` and `jti`.
 * @param nowMs clock, for tests.
 */
export async function signJwt<N extends object>(claims: Omit<NatsClaims<N>, "jti" | "iat" | "iss">, signer: NkeySigner, nowMs = Date.now()): Promise<string> {
  const body: Record<string, unknown> = { ...claims, iss: signer.publicKey, iat: Math.floor(nowMs / 1000) };
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(JSON.stringify(body))));
  const full = { jti: base32Encode(digest), ...body };
  const signingInput = `${HEADER_B64}.${bytesToBase64Url(encoder.encode(JSON.stringify(full)))}`;
  const signature = await signer.sign(encoder.encode(signingInput));
  return `${signingInput}.${bytesToBase64Url(signature)}`;
}

/** Decodes a NATS JWT without checking the signature. Throws on a malformed token. */
export function decodeJwt<N extends object = Record<string, unknown>>(jwt: string): NatsClaims<N> {
  const parts = jwt.split(".");
  if (parts.length !== 3) throw new Error("a JWT has three parts");
  const header = JSON.parse(new TextDecoder().decode(base64UrlToBytes(parts[0]!))) as { typ?: string; alg?: string };
  if (header.typ?.toUpperCase() !== "JWT" || header.alg !== HEADER.alg) throw new Error("not a NATS v2 JWT");
  return JSON.parse(new TextDecoder().decode(base64UrlToBytes(parts[1]!))) as NatsClaims<N>;
}

/** Decodes a NATS JWT and checks its Ed25519 signature against its `iss`. Throws when invalid. */
export async function verifyJwt<N extends object = Record<string, unknown>>(jwt: string): Promise<NatsClaims<N>> {
  const claims = decodeJwt<N>(jwt);
  decodePublicKey(claims.iss);
  const [h, b, s] = jwt.split(".") as [string, string, string];
  if (!(await verifySignature(claims.iss, encoder.encode(`${h}.${b}`), base64UrlToBytes(s)))) {
    throw new Error("JWT signature does not verify");
  }
  return claims;
}
