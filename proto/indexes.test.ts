import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { formatIndexes, IndexListSchema, parseIndexes } from "./indexes";

describe("partition index lists", () => {
  it("reads and writes Kubernetes' form", () => {
    expect(parseIndexes("0-2,4,7-8")).toEqual([0, 1, 2, 4, 7, 8]);
    expect(formatIndexes([8, 7, 4, 2, 1, 0, 4])).toBe("0-2,4,7-8");
    expect(parseIndexes("")).toEqual([]);
    expect(formatIndexes([])).toBe("");
  });

  it("round-trips any set", () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.nat(500)), (xs) => {
        expect(parseIndexes(formatIndexes(xs))).toEqual([...xs].sort((a, b) => a - b));
        expect(IndexListSchema.safeParse(formatIndexes(xs)).success).toBe(true);
      }),
    );
  });

  it("refuses a list that is not ascending or not a list", () => {
    expect(IndexListSchema.safeParse("4,2").success).toBe(false);
    expect(IndexListSchema.safeParse("1-3,2").success).toBe(false);
    expect(IndexListSchema.safeParse("a").success).toBe(false);
  });
});
