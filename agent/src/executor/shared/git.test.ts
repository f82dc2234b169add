// pruneGitCache: which checkouts go, which stay.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { gitEnv, pruneGitCache, trustExtraCaForGit } from "./git";

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

describe("git and the extra CA bundle", () => {
  it("NODE_EXTRA_CA_CERTS reaches git as a bundle of the system's CAs followed by the extra ones (GIT_SSL_CAINFO replaces git's own)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "parallels-git-ca-"));
    dirs.push(dir);
    const extra = join(dir, "site.pem");
    writeFileSync(extra, "-----BEGIN CERTIFICATE-----\nSITE\n-----END CERTIFICATE-----\n");
    // A GIT_SSL_CAINFO of the site's own, or no extra CA: nothing is written.
    expect(await trustExtraCaForGit(join(dir, "a"), { NODE_EXTRA_CA_CERTS: extra, GIT_SSL_CAINFO: "/site/ca.pem" })).toBeUndefined();
    expect(await trustExtraCaForGit(join(dir, "a"), {})).toBeUndefined();
    expect(gitEnv({}).GIT_SSL_CAINFO).toBeUndefined();
    const bundle = await trustExtraCaForGit(join(dir, "git"), { NODE_EXTRA_CA_CERTS: extra });
    expect(bundle).toBe(join(dir, "git", "ca-bundle.pem"));
    const text = readFileSync(bundle!, "utf8");
    expect(text.endsWith(readFileSync(extra, "utf8"))).toBe(true);
    if (existsSync("/etc/ssl/certs/ca-certificates.crt")) expect(text.startsWith(readFileSync("/etc/ssl/certs/ca-certificates.crt", "utf8"))).toBe(true);
    expect(gitEnv({}).GIT_SSL_CAINFO).toBe(bundle);
    expect(gitEnv({ GIT_SSL_CAINFO: "/mine.pem" }).GIT_SSL_CAINFO).toBe("/mine.pem");
  });
});
