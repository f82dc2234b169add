import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { acceptHit, cacheKey, cachePolicy, canonicalJson, effectiveCache, type InputDigest, sha256Hex, unpinnedCacheWarning } from "./cache";
import { upstreamOf } from "./graph";
import { acyclicDagArb } from "./testing";
import { validateDag } from "./validate";

const base = { project: "git:abc", entryPoint: "main", parameters: { a: 1 }, env: {}, image: null, inputs: [] as InputDigest[] };

describe("cache: the DAG's and node's `cache`", () => {
  it("accepts true, false and {maxAge}; the node's wins over the DAG's", () => {
    const r = validateDag({
      name: "d",
      cache: true,
      nodes: [
        { id: "a", project: { uri: "p" } },
        { id: "b", project: { uri: "p" }, cache: false },
        { id: "c", project: { uri: "p" }, cache: { maxAge: "7d" } },
      ],
    });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const [a, b, c] = r.dag.nodes;
    expect(cachePolicy(effectiveCache(r.dag, a!))).toEqual({ maxAgeMs: null });
    expect(cachePolicy(effectiveCache(r.dag, b!))).toBeNull();
    expect(cachePolicy(effectiveCache(r.dag, c!))).toEqual({ maxAgeMs: 7 * 86_400_000 });
    expect(cachePolicy(effectiveCache({}, {}))).toBeNull();
  });

  it.each([
    [{ cache: "yes" }, "nodes[0].cache", /true, false or \{maxAge/],
    [{ cache: { maxAge: "7 days" } }, "nodes[0].cache.maxAge", /positive duration/],
    [{ cache: { maxAge: "7d", extra: 1 } }, "nodes[0].cache.extra", /unknown|unrecognized|not allowed/i],
    [{ cache: {} }, "nodes[0].cache.maxAge", /./],
  ])("refuses %j naming the field", (extra, path, message) => {
    const r = validateDag({ name: "d", nodes: [{ id: "a", project: { uri: "p" }, ...extra }] });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems.map((p) => p.path)).toContain(path);
    expect(r.problems.find((p) => p.path === path)?.message).toMatch(message);
  });

  it("refuses a bad DAG-level cache naming `cache`", () => {
    const r = validateDag({ name: "d", cache: { maxAge: 0 }, nodes: [{ id: "a", project: { uri: "p" } }] });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems.map((p) => p.path)).toContain("cache.maxAge");
  });
});

describe("cache: which hit is acceptable", () => {
  const now = 1_000_000;
  it("a succeeded node run, within maxAge", () => {
    expect(acceptHit({ status: "succeeded", finishedAt: now - 5000 }, { maxAgeMs: null }, now)).toBe(true);
    expect(acceptHit({ status: "succeeded", finishedAt: now - 5000 }, { maxAgeMs: 5000 }, now)).toBe(true);
    expect(acceptHit({ status: "succeeded", finishedAt: now - 5001 }, { maxAgeMs: 5000 }, now)).toBe(false);
  });
  it("never a run that did not succeed, nor without a policy", () => {
    for (const status of ["failed", "cancelled", "running", "cached", "reused", "skipped"]) expect(acceptHit({ status, finishedAt: now }, { maxAgeMs: null }, now)).toBe(false);
    expect(acceptHit({ status: "succeeded", finishedAt: null }, { maxAgeMs: null }, now)).toBe(false);
    expect(acceptHit({ status: "succeeded", finishedAt: now }, null, now)).toBe(false);
    expect(acceptHit(null, { maxAgeMs: null }, now)).toBe(false);
  });
});

describe("cache: the key", () => {
  it("is a digest of every part; order of keys and inputs does not matter", async () => {
    const k = await cacheKey(base);
    expect(k).toMatch(/^v1:[0-9a-f]{64}$/);
    expect(await cacheKey({ ...base, parameters: { a: 1 } })).toBe(k);
    for (const change of [
      { project: "git:abd" },
      { entryPoint: "other" },
      { parameters: { a: 2 } },
      { env: { X: "1" } },
      { image: "python:3.12" },
      { inputs: [{ path: "x", size: 1, sha256: "00" }] },
    ]) {
      expect(await cacheKey({ ...base, ...change })).not.toBe(k);
    }
    const two: InputDigest[] = [
      { path: "a/1", size: 1, sha256: "aa" },
      { path: "a/2", size: 2, sha256: "bb" },
    ];
    expect(await cacheKey({ ...base, inputs: two })).toBe(await cacheKey({ ...base, inputs: [...two].reverse() }));
    expect(canonicalJson({ b: 1, a: { d: 2, c: [3, { f: 1, e: 0 }] } })).toBe('{"a":{"c":[3,{"e":0,"f":1}],"d":2},"b":1}');
  });

  it("a git branch (or no version) warns that the key uses the commit at dispatch; a commit id or local folder does not", () => {
    const sha = "0123456789abcdef0123456789abcdef01234567";
    expect(unpinnedCacheWarning({ uri: "https://g/x.git", version: "main" }, true, sha)).toMatch(/branch or tag 'main'.*commit it had at dispatch \(0123/);
    expect(unpinnedCacheWarning({ uri: "https://g/x.git" }, true, sha)).toMatch(/default branch/);
    expect(unpinnedCacheWarning({ uri: "https://g/x.git", version: sha }, true, sha)).toBeUndefined();
    expect(unpinnedCacheWarning({ uri: "projects/x" }, false, undefined)).toBeUndefined();
  });
});

/**
 * Two runs of a random DAG under caching, as the agent and control plane do it: each node's key
 * is made from its own settings and the digests of the files its upstream nodes produced (what
 * it downloads); a node whose key a first run stored is `cached` and takes that result. Between
 * the runs some nodes' parameters change. Whatever changes, a cached node's every ancestor has the
 * result it had when the hit was made — so the cached result is the one running it would give.
 */
describe("cache: property — a cached node never has an ancestor whose result differs", () => {
  const caseArb = acyclicDagArb({ maxNodes: 25 }).chain((g) =>
    fc.record({
      g: fc.constant(g),
      changed: fc.array(fc.boolean(), { minLength: g.ids.length, maxLength: g.ids.length }),
      // A step may be non-deterministic in the model too: the result is whatever the first run made.
      salt: fc.integer(),
    }),
  );

  it("holds for any change of parameters", async () => {
    await fc.assert(
      fc.asyncProperty(caseArb, async ({ g, changed, salt }) => {
        const r = validateDag(g.doc);
        if (!r.ok) throw new Error("generated DAG invalid");
        const up = upstreamOf(r.dag);
        const store = new Map<string, string>(); // key → result (a succeeded node run's outputs)
        const run = async (param: (id: string) => number, tag: string) => {
          const result = new Map<string, string>();
          const cached = new Set<string>();
          for (const id of g.ids) {
            // g.ids is creation order: every upstream node comes first.
            const inputs = await Promise.all((up.get(id) ?? []).map(async (u) => ({ path: `${u}/out`, size: result.get(u)!.length, sha256: await sha256Hex(result.get(u)!) })));
            // Each node is its own step (project), as in a real DAG; two identical steps would rightly share a key.
            const key = await cacheKey({ ...base, project: `git:${id}`, parameters: { p: param(id) }, inputs });
            const hit = store.get(key);
            if (hit !== undefined) {
              cached.add(id);
              result.set(id, hit);
            } else {
              const out = `${tag}:${salt}:${id}:${param(id)}:${inputs.map((i) => i.sha256).join(",")}`;
              result.set(id, out);
              store.set(key, out);
            }
          }
          return { result, cached };
        };
        const first = await run(() => 0, "first");
        const second = await run((id) => (changed[g.ids.indexOf(id)] ? 1 : 0), "second");
        const ancestors = (id: string, seen = new Set<string>()): Set<string> => {
          for (const u of up.get(id) ?? []) if (!seen.has(u)) ancestors(u, seen.add(u));
          return seen;
        };
        for (const id of second.cached) {
          expect(changed[g.ids.indexOf(id)]).toBe(false);
          for (const a of ancestors(id)) expect(second.result.get(a)).toBe(first.result.get(a));
        }
        // And unchanged all the way up means cached: nothing runs again needlessly.
        for (const id of g.ids) {
          const same = !changed[g.ids.indexOf(id)] && [...ancestors(id)].every((a) => !changed[g.ids.indexOf(a)]);
          expect(second.cached.has(id)).toBe(same);
        }
      }),
      { numRuns: 60 },
    );
  });
});
