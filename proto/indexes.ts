/**
 * Sets of partition indexes written as Kubernetes writes a Job's `completedIndexes`: ascending,
 * with runs of consecutive indexes as ranges — `"0-2,4,7-8"`. Compact for the common cases
 * (a few failed partitions among thousands, or most of them), one text field wherever it is
 * stored (D1 stores counters and such a list, never a row per partition).
 */
import { z } from "zod";

/** `"0-2,4"` → `[0, 1, 2, 4]`; an empty or absent list is `[]`. */
export function parseIndexes(s: string | undefined | null): number[] {
  if (!s) return [];
  const out: number[] = [];
  for (const part of s.split(",")) {
    const [a, b] = part.split("-").map(Number);
    if (a === undefined || !Number.isInteger(a)) continue;
    for (let i = a; i <= (b ?? a); i++) out.push(i);
  }
  return out;
}

/** `[4, 0, 1, 2, 2]` → `"0-2,4"`. */
export function formatIndexes(indexes: Iterable<number>): string {
  const sorted = [...new Set(indexes)].sort((x, y) => x - y);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(j === i ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(",");
}

/** A well-formed index list (ascending, no overlap), at most `max` long. */
export const IndexListSchema = z
  .string()
  .max(64 * 1024)
  .regex(/^(\d+(-\d+)?(,\d+(-\d+)?)*)?$/, { error: 'expected partition indexes such as "0-2,4,7"' })
  .refine((s) => formatIndexes(parseIndexes(s)) === s, { error: "expected ascending, non-overlapping indexes and ranges" });
