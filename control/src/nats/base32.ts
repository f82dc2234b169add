/**
 * Base32 without padding, over any 32-character alphabet: RFC 4648 for nkeys and JWT ids,
 * Crockford's (lower case) for the control plane's ids and secrets.
 */
export const RFC4648 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
export const CROCKFORD_LOWER = "0123456789abcdefghjkmnpqrstvwxyz";

export function base32Encode(bytes: Uint8Array, alphabet = RFC4648): string {
  let out = "";
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = ((buffer << 8) | byte) & 0xffff; // only the low `bits` (< 13) bits are ever read
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(buffer << (5 - bits)) & 31];
  return out;
}

/** Decodes; returns null on a character outside the alphabet. */
export function base32Decode(text: string, alphabet = RFC4648): Uint8Array | null {
  const out = new Uint8Array(Math.floor((text.length * 5) / 8));
  let buffer = 0;
  let bits = 0;
  let n = 0;
  for (const ch of text) {
    const v = alphabet.indexOf(ch);
    if (v < 0) return null;
    buffer = ((buffer << 5) | v) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out[n++] = (buffer >>> (bits - 8)) & 0xff;
      bits -= 8;
    }
  }
  return out;
}
