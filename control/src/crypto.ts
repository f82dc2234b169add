/** Random ids and secrets, and the hash under which secrets are stored. Web Crypto only. */
import { base32Encode, CROCKFORD_LOWER as CROCKFORD } from "./nats/base32";
import { bytesToBase64Url } from "./nats/base64url";

/**
 * Time-ordered, lowercase, DNS-label-safe id (like a ULID): 10 chars of milliseconds + 10 random.
 * Sorting ids sorts by creation time, which keeps cursor pagination stable.
 */
export function newId(now = Date.now()): string {
  let time = "";
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  return time + base32Encode(crypto.getRandomValues(new Uint8Array(7)), CROCKFORD).slice(0, 10);
}

/** A secret a person pastes: a recognisable prefix and 256 random bits. */
export function newSecret(prefix: string): string {
  return `${prefix}_${bytesToBase64Url(crypto.getRandomValues(new Uint8Array(32)))}`;
}

export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Compares two equal-length hex digests without an early exit. */
export function sameDigest(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

export const iso = (ms: number | null | undefined): string | null => (ms == null ? null : new Date(ms).toISOString());

/** JSON with object keys sorted at every level: equal values give equal text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(
          Object.keys(v)
            .sort()
            .map((k) => [k, (v as Record<string, unknown>)[k]]),
        )
      : v,
  );
}
