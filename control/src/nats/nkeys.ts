/**
 * NATS nkeys on Web Crypto: the text encoding (base32 + CRC16, role prefix byte) of public keys
 * and seeds, and Ed25519 signing keys imported once from a seed. Runs in workerd and Node 22; no
 * Node APIs, no pure-JS curve maths (signing is `crypto.subtle.sign("Ed25519", …)`).
 *
 * Encoding (as in github.com/nats-io/nkeys):
 * - public key `U…`/`A…`/`O…`: base32(prefix byte ‖ 32-byte Ed25519 public key ‖ crc16 LE), 56 chars;
 * - seed `SU…`/`SA…`/`SO…`: base32(2 prefix bytes packing `S` and the role ‖ 32-byte Ed25519 seed
 *   ‖ crc16 LE), 58 chars. The seed is the RFC 8032 private key.
 */
import { base64UrlToBytes } from "./base64url";
import { base32Decode as decodeBase32, base32Encode } from "./base32";

/** The roles this project uses, with their nkey prefix bytes. */
export const NKEY_ROLES = {
  operator: 14 << 3, // 'O'
  account: 0, // 'A'
  user: 20 << 3, // 'U'
  server: 13 << 3, // 'N'
  cluster: 2 << 3, // 'C'
} as const;

export type NkeyRole = keyof typeof NKEY_ROLES;

const SEED_PREFIX = 18 << 3; // 'S'

/** Thrown for any malformed key or seed; the message never contains the seed. */
export class NkeyError extends Error {
  override name = "NkeyError";
}

function roleOf(prefix: number): NkeyRole | undefined {
  for (const [role, byte] of Object.entries(NKEY_ROLES)) if (byte === prefix) return role as NkeyRole;
  return undefined;
}

/** CRC-16/XMODEM (poly 0x1021, init 0), the nkeys checksum. */
export function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

export { base32Encode };

/** RFC 4648 base32 without padding; throws {@link NkeyError} on a character outside the alphabet. */
export function base32Decode(text: string): Uint8Array {
  const bytes = decodeBase32(text);
  if (!bytes) throw new NkeyError("invalid base32 character in nkey");
  return bytes;
}

function withChecksum(payload: Uint8Array): string {
  const raw = new Uint8Array(payload.length + 2);
  raw.set(payload);
  const crc = crc16(payload);
  raw[payload.length] = crc & 0xff;
  raw[payload.length + 1] = crc >>> 8;
  return base32Encode(raw);
}

function checked(text: string): Uint8Array {
  const raw = base32Decode(text);
  if (raw.length < 4) throw new NkeyError("nkey too short");
  const payload = raw.subarray(0, raw.length - 2);
  const crc = raw[raw.length - 2]! | (raw[raw.length - 1]! << 8);
  if (crc16(payload) !== crc) throw new NkeyError("nkey checksum mismatch");
  return payload;
}

/** Encodes a 32-byte Ed25519 public key as an nkey of `role` (`U…`, `A…`, `O…`). */
export function encodePublicKey(role: NkeyRole, publicKey: Uint8Array): string {
  if (publicKey.length !== 32) throw new NkeyError("an Ed25519 public key has 32 bytes");
  const payload = new Uint8Array(33);
  payload[0] = NKEY_ROLES[role];
  payload.set(publicKey, 1);
  return withChecksum(payload);
}

/**
 * Decodes a public nkey (checksum and prefix checked) to its 32 raw bytes.
 * @param expected when given, the key must have this role (e.g. `"user"` for an agent's `U…` key).
 */
export function decodePublicKey(key: string, expected?: NkeyRole): { role: NkeyRole; publicKey: Uint8Array } {
  if (typeof key !== "string" || key.length !== 56) throw new NkeyError("a public nkey has 56 characters");
  const payload = checked(key);
  const role = roleOf(payload[0]!);
  if (!role || payload.length !== 33) throw new NkeyError("not a public nkey");
  if (expected && role !== expected) throw new NkeyError(`expected a ${expected} nkey, got a ${role} nkey`);
  return { role, publicKey: payload.slice(1) };
}

/** True when `key` is a well-formed public nkey of `role` (checksum included). */
export function isPublicKey(key: unknown, role: NkeyRole): key is string {
  try {
    decodePublicKey(key as string, role);
    return true;
  } catch {
    return false;
  }
}

/** Encodes a 32-byte Ed25519 seed as an nkey seed of `role` (`SU…`, `SA…`, `SO…`). */
export function encodeSeed(role: NkeyRole, seed: Uint8Array): string {
  if (seed.length !== 32) throw new NkeyError("an Ed25519 seed has 32 bytes");
  const prefix = NKEY_ROLES[role];
  const payload = new Uint8Array(34);
  payload[0] = SEED_PREFIX | (prefix >> 5);
  payload[1] = (prefix & 31) << 3;
  payload.set(seed, 2);
  return withChecksum(payload);
}

/** Decodes an nkey seed (checksum and prefix bytes checked) to its role and 32-byte Ed25519 seed. */
export function decodeSeed(seed: string, expected?: NkeyRole): { role: NkeyRole; seed: Uint8Array } {
  if (typeof seed !== "string" || seed.length !== 58) throw new NkeyError("an nkey seed has 58 characters");
  const payload = checked(seed);
  if (payload.length !== 34 || (payload[0]! & 0xf8) !== SEED_PREFIX) throw new NkeyError("not an nkey seed");
  const role = roleOf(((payload[0]! & 7) << 5) | ((payload[1]! & 0xf8) >> 3));
  if (!role) throw new NkeyError("unknown nkey seed role");
  if (expected && role !== expected) throw new NkeyError(`expected a ${expected} seed, got a ${role} seed`);
  return { role, seed: payload.slice(2) };
}

// PKCS#8 PrivateKeyInfo for Ed25519 (RFC 8410) up to the 32-byte seed.
const PKCS8_ED25519 = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

/** A signing nkey held as a non-extractable Web Crypto key. Import once, sign many times. */
export interface NkeySigner {
  readonly role: NkeyRole;
  /** The public nkey (`A…`, `O…`, `U…`): a JWT's `iss` when this key signs it. */
  readonly publicKey: string;
  /** Ed25519 signature (64 bytes) of `data`. */
  sign(data: Uint8Array): Promise<Uint8Array>;
}

/**
 * Imports an nkey seed as an Ed25519 Web Crypto key and derives its public nkey. Costs a few
 * hundred microseconds; keep the result (e.g. in module scope of the Worker) and reuse it.
 * @param expected when given, the seed must have this role (e.g. `"account"` for `SA…`).
 */
export async function importSeed(seed: string, expected?: NkeyRole): Promise<NkeySigner> {
  const decoded = decodeSeed(seed, expected);
  const pkcs8 = new Uint8Array(PKCS8_ED25519.length + 32);
  pkcs8.set(PKCS8_ED25519);
  pkcs8.set(decoded.seed, PKCS8_ED25519.length);
  decoded.seed.fill(0);
  // Web Crypto cannot derive a public key from a private one, but a JWK export carries it (`x`).
  const extractable = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, true, ["sign"]);
  const jwk = (await crypto.subtle.exportKey("jwk", extractable)) as JsonWebKey;
  const key = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, false, ["sign"]);
  pkcs8.fill(0);
  if (!jwk.x) throw new NkeyError("Ed25519 key export without a public part");
  const publicKey = encodePublicKey(decoded.role, base64UrlToBytes(jwk.x));
  return {
    role: decoded.role,
    publicKey,
    async sign(data: Uint8Array): Promise<Uint8Array> {
      return new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, key, data as Uint8Array<ArrayBuffer>));
    },
  };
}

/** Verifies an Ed25519 signature by the public nkey `publicKey`. */
export async function verifySignature(publicKey: string, data: Uint8Array, signature: Uint8Array): Promise<boolean> {
  const raw = decodePublicKey(publicKey).publicKey as Uint8Array<ArrayBuffer>;
  const key = await crypto.subtle.importKey("raw", raw, { name: "Ed25519" }, false, ["verify"]);
  return crypto.subtle.verify({ name: "Ed25519" }, key, signature as Uint8Array<ArrayBuffer>, data as Uint8Array<ArrayBuffer>);
}
