import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { computeManifest, fnv1a32, sliceFiles, sliceMetadata } from "./manifest";
import type { Metadata } from "./metadata";

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

describe("computeManifest with output metadata", () => {
  const meta = new Map<string, Metadata>([
    ["a/1.txt", { label: "cat", n: 1 }],
    ["a/3.csv", { label: "dog", n: 2 }],
    ["b/2.txt", { label: "cat", ok: true }],
    ["top.txt", { other: "x" }],
  ]);

  it("slices carry their files' metadata; sliceMetadata keys it like the slice's files", () => {
    const m = computeManifest({ by: "object", input: "in" }, 1, files, meta);
    expect(m.partitions[0]).toEqual({ index: 0, key: "a/1.txt", files: ["a/1.txt"], metadata: { "a/1.txt": { label: "cat", n: 1 } } });
    expect(m.partitions[3]).toEqual({ index: 3, key: "b/x/4.txt", files: ["b/x/4.txt"] }); // none: no field at all
    expect(sliceMetadata(m, 2)).toEqual({ "in/b/2.txt": { label: "cat", ok: true } });
    expect(computeManifest({ by: "object", input: "in" }, 1, files)).toEqual(computeManifest({ by: "object", input: "in" }, 1, files, new Map()));
  });

  it("hash on a metadata field: equal values share a bucket, files without the field are in none", () => {
    const m = computeManifest({ by: "hash", input: "in", key: { metadata: "label" }, partitions: 5 }, 1, files, meta);
    expect(m.partitions.flatMap((p) => p.files).sort()).toEqual(["a/1.txt", "a/3.csv", "b/2.txt"]);
    expect(m.partitions[fnv1a32("cat") % 5]!.files).toEqual(expect.arrayContaining(["a/1.txt", "b/2.txt"]));
    expect(m.partitions[fnv1a32("dog") % 5]!.files).toContain("a/3.csv");
    const byNumber = computeManifest({ by: "hash", input: "in", key: { metadata: "n" }, partitions: 7 }, 1, files, meta);
    expect(byNumber.partitions[fnv1a32("2") % 7]!.files).toContain("a/3.csv");
  });

  it("regex on a metadata field: grouped by the value's match, files without the field left out", () => {
    const m = computeManifest({ by: "regex", input: "in", metadata: "label", pattern: "^(cat|dog)$" }, 1, files, meta);
    expect(m.partitions.map((p) => [p.key, p.files])).toEqual([
      ["cat", ["a/1.txt", "b/2.txt"]],
      ["dog", ["a/3.csv"]],
    ]);
    expect(m.partitions[0]!.metadata).toEqual({ "a/1.txt": { label: "cat", n: 1 }, "b/2.txt": { label: "cat", ok: true } });
    const bool = computeManifest({ by: "regex", input: "in", metadata: "ok", pattern: "true" }, 1, files, meta);
    expect(bool.partitions).toEqual([{ index: 0, key: "true", files: ["b/2.txt"], metadata: { "b/2.txt": { label: "cat", ok: true } } }]);
    // A metadata partitioner over items without metadata: nothing to place.
    expect(computeManifest({ by: "regex", input: "in", metadata: "label", pattern: "." }, 1, files).count).toBe(0);
  });

  it("property: every item lands in exactly the partition its key decides; equal keys share a partition", () => {
    const item = fc.record({ name: fc.stringMatching(/^[a-z0-9]{1,6}$/), label: fc.option(fc.constantFrom("cat", "dog", "owl", "7", "true"), { nil: undefined }) });
    fc.assert(
      fc.property(fc.uniqueArray(item, { selector: (i) => i.name, maxLength: 40 }), fc.integer({ min: 1, max: 9 }), (items, partitions) => {
        const metadata = new Map(items.filter((i) => i.label !== undefined).map((i) => [i.name, { label: i.label! } as Metadata]));
        const names = items.map((i) => i.name);
        const hash = computeManifest({ by: "hash", input: "in", key: { metadata: "label" }, partitions }, 1, names, metadata);
        const regex = computeManifest({ by: "regex", input: "in", metadata: "label", pattern: ".+" }, 1, names, metadata);
        for (const m of [hash, regex]) {
          const where = new Map<string, number[]>();
          for (const p of m.partitions) for (const f of p.files) where.set(f, [...(where.get(f) ?? []), p.index]);
          const keyOf = new Map<string, number>();
          for (const i of items) {
            const at = where.get(i.name) ?? [];
            if (i.label === undefined) {
              expect(at).toEqual([]); // no field: in no partition
              continue;
            }
            expect(at).toHaveLength(1); // exactly one partition
            const p = m.partitions[at[0]!]!;
            if (m === hash) expect(at[0]).toBe(fnv1a32(i.label) % partitions);
            else expect(p.key).toBe(i.label);
            expect(p.metadata?.[i.name]).toEqual({ label: i.label });
            if (keyOf.has(i.label)) expect(keyOf.get(i.label)).toBe(at[0]); // equal keys share one
            keyOf.set(i.label, at[0]!);
          }
        }
        // A regex partition holds exactly the items of its key.
        for (const p of regex.partitions) expect(p.files.every((f) => metadata.get(f)?.label === p.key)).toBe(true);
      }),
    );
  });
});
