import { describe, expect, it } from "vitest";
import { newId } from "./crypto";
import { base32Decode, base32Encode, CROCKFORD_LOWER } from "./nats/base32";

describe("ids and base32", () => {
  it("ids are 20 lowercase Crockford characters (DNS-label safe), ordered by time, and distinct", () => {
    const ids = Array.from({ length: 200 }, (_, i) => newId(1_800_000_000_000 + i * 1000));
    for (const id of ids) expect(id).toMatch(/^[0-9a-hjkmnp-tv-z]{20}$/);
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("base32 round-trips any bytes in either alphabet and refuses foreign characters", () => {
    for (let n = 0; n < 40; n++) {
      const bytes = crypto.getRandomValues(new Uint8Array(n));
      expect(base32Decode(base32Encode(bytes))).toEqual(bytes);
      expect(base32Decode(base32Encode(bytes, CROCKFORD_LOWER), CROCKFORD_LOWER)).toEqual(bytes);
    }
    expect(base32Encode(new TextEncoder().encode("foobar"))).toBe("MZXW6YTBOI"); // RFC 4648 test vector, unpadded
    expect(base32Decode("MZXW6YTBO1")).toBeNull();
  });
});
