// pruneGitCache: which checkouts go, which stay.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { pruneGitCache } from "./git";

const DAY = 24 * 3600_000;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A fake checkout `<cache>/<repo>/<name>` with a `.git` folder, last used `daysAgo`. */
function checkout(cache: string, repo: string, name: string, daysAgo: number): string {
  const dir = join(cache, repo, name);
  mkdirSync(join(dir, ".git"), { recursive: true });
  mkdirSync(join(dir, "examples", "train"), { recursive: true });
  writeFileSync(join(dir, "MLproject"), "name: x\n");
  const at = new Date(Date.now() - daysAgo * DAY);
  utimesSync(dir, at, at);
  return dir;
}

describe("pruneGitCache", () => {
  it("deletes checkouts unused since the cutoff, keeps recent ones and those steps run in (or below), clears leftovers", async () => {
    const cache = mkdtempSync(join(tmpdir(), "parallels-git-cache-"));
    dirs.push(cache);
    const old = checkout(cache, "r1", "a".repeat(40), 9);
    const recent = checkout(cache, "r1", "b".repeat(40), 1);
    const running = checkout(cache, "r2", "c".repeat(40), 30);
    const runningBelow = checkout(cache, "r2", "d".repeat(40), 30);
    const leftover = checkout(cache, "r2", ".trash-1234", 0);
    const inUse = new Set([running, join(runningBelow, "examples", "train")]);

    const removed = await pruneGitCache(cache, Date.now() - 7 * DAY, inUse);
    expect(removed).toEqual([old]);
    expect([old, recent, running, runningBelow, leftover].map((d) => existsSync(d))).toEqual([false, true, true, true, false]);
    expect(readdirSync(join(cache, "r1"))).toEqual(["b".repeat(40)]);
  });
});
