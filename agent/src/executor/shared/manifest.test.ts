import { describe, expect, it } from "vitest";
import { computeManifest, fnv1a32, sliceFiles } from "./manifest";

const files = ["b/2.txt", "a/1.txt", "a/3.csv", "top.txt", "b/x/4.txt"];

describe("computeManifest", () => {
  it("unpartitioned: one partition with every file, not nested", () => {
    const m = computeManifest(undefined, 4, files);
    expect(m).toMatchObject({ by: "unpartitioned", count: 1, nested: false });
    expect(m.partitions[0]!.files).toEqual(["a/1.txt", "a/3.csv", "b/2.txt", "b/x/4.txt", "top.txt"]);
    expect(computeManifest({ by: "none", input: "in" }, 4, files)).toMatchObject({ by: "none", count: 1, nested: false, input: "in" });
  });

  it("object: one partition per file, in path order; slices are relative to the inputs folder", () => {
    const m = computeManifest({ by: "object", input: "parts" }, 2, files);
    expect(m.count).toBe(5);
    expect(m.partitions.map((p) => p.files)).toEqual([["a/1.txt"], ["a/3.csv"], ["b/2.txt"], ["b/x/4.txt"], ["top.txt"]]);
    expect(sliceFiles(m, 3)).toEqual(["parts/b/x/4.txt"]);
    expect(computeManifest({ by: "object", input: "parts" }, 2, []).count).toBe(0);
  });

  it("directory: one partition per top-level folder", () => {
    const m = computeManifest({ by: "directory", input: "d" }, 1, files);
    expect(m.partitions.map((p) => [p.key, p.files])).toEqual([
      ["a", ["a/1.txt", "a/3.csv"]],
      ["b", ["b/2.txt", "b/x/4.txt"]],
    ]);
  });

  it("broadcast: `parallelism` partitions, each with everything", () => {
    const m = computeManifest({ by: "broadcast", input: "d" }, 3, files);
    expect(m.count).toBe(3);
    for (const p of m.partitions) expect(p.files).toHaveLength(5);
  });

  it("hash: every file in exactly one of `partitions` buckets, stable by key", () => {
    const m = computeManifest({ by: "hash", input: "d", key: "stem", partitions: 3 }, 1, files);
    expect(m.count).toBe(3);
    expect(m.partitions.flatMap((p) => p.files).sort()).toEqual([...files].sort());
    const bucketOf = (f: string) => m.partitions.findIndex((p) => p.files.includes(f));
    expect(bucketOf("a/1.txt")).toBe(fnv1a32("1") % 3);
    expect(fnv1a32("")).toBe(0x811c9dc5);
    expect(fnv1a32("a")).toBe(0xe40c292c);
    const byRegex = computeManifest({ by: "hash", input: "d", key: { regex: "^(a|b)/" }, partitions: 2 }, 1, files);
    expect(byRegex.partitions.flatMap((p) => p.files)).not.toContain("top.txt");
  });

  it("regex: grouped by the capture group, non-matching files left out", () => {
    const m = computeManifest({ by: "regex", input: "d", pattern: "\\.(txt|csv)$" }, 1, files);
    expect(m.partitions.map((p) => [p.key, p.files.length])).toEqual([
      ["csv", 1],
      ["txt", 4],
    ]);
    const named = computeManifest({ by: "regex", input: "d", pattern: "^(?<dir>[ab])/", group: "dir" }, 1, files);
    expect(named.partitions.map((p) => p.key)).toEqual(["a", "b"]);
    const whole = computeManifest({ by: "regex", input: "d", pattern: "^a/" }, 1, files);
    expect(whole.partitions).toEqual([{ index: 0, key: "a/", files: ["a/1.txt", "a/3.csv"] }]);
  });
});
