/**
 * @module
 * Git checkouts of project repositories with the git CLI, cached per repository and commit under
 * `<stateDir>/git/<hash of the URL>/<commit>`. Like MLflow's `_fetch_git_repo`: `git init`,
 * `remote add origin`, shallow `fetch` of the version (full fetch if the server refuses a
 * shallow fetch of that ref), `checkout`, `submodule update --init --recursive`. A full commit id
 * that is already cached is used without touching the network. Each use stamps the checkout's
 * mtime; {@link pruneGitCache} deletes checkouts unused for a while.
 */
import { execFile } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, utimes, writeFile } from "node:fs/promises";
import { join, sep } from "node:path";
import { KeyedLock } from "../../keyed-lock";

export class GitError extends Error {
  override name = "GitError";
}

export interface Checkout {
  dir: string;
  commit: string;
}

/** Protocols git may use (also for submodules): no `ext::`, no `fd::`, nothing a URL could smuggle in. */
export const GIT_ALLOW_PROTOCOL = "https:ssh:git:file";

/** `scheme://user:password@host` → `scheme://***@host` anywhere in a text (error messages, logs). */
export function redactUrlCredentials(text: string): string {
  return text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@]+@/gi, "$1***@");
}

/** The environment of git commands: the agent's, without its secrets, no prompts, allowed protocols only. */
export function gitEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(base)) if (!k.startsWith("PARALLELS_")) env[k] = v;
  env.GIT_TERMINAL_PROMPT = "0";
  env.GIT_ALLOW_PROTOCOL = GIT_ALLOW_PROTOCOL;
  if (gitCaInfo && !env.GIT_SSL_CAINFO) env.GIT_SSL_CAINFO = gitCaInfo;
  return env;
}

/** The system's CA bundle git reads by default (Debian's, as in the agent's image). */
const SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";
let gitCaInfo: string | undefined;

/**
 * The extra CAs the agent trusts (`NODE_EXTRA_CA_CERTS`: the chart's `caBundle`, a TLS-inspecting
 * proxy's CA) for git too. git has no "extra" CA setting — `GIT_SSL_CAINFO` replaces its CAs — so
 * it gets a bundle of the system's CAs followed by the extra ones, written once into `dir` (the
 * git cache folder: writable in the agent's pod and in a work pod's `fetch`). Without the
 * variable, or with `GIT_SSL_CAINFO` set, nothing changes.
 */
export async function trustExtraCaForGit(dir: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const extra = env.NODE_EXTRA_CA_CERTS;
  if (!extra || env.GIT_SSL_CAINFO || gitCaInfo) return gitCaInfo;
  const system = existsSync(SYSTEM_CA_BUNDLE) ? await readFile(SYSTEM_CA_BUNDLE, "utf8") : "";
  const bundle = join(dir, "ca-bundle.pem");
  await mkdir(dir, { recursive: true });
  await writeFile(`${bundle}.tmp`, `${system}${system && !system.endsWith("\n") ? "\n" : ""}${await readFile(extra, "utf8")}`);
  await rename(`${bundle}.tmp`, bundle);
  gitCaInfo = bundle;
  return bundle;
}

function git(args: string[], cwd: string | undefined, gitBin: string): Promise<string> {
  return new Promise((ok, fail) => {
    execFile(gitBin, args, { cwd, timeout: 600_000, maxBuffer: 16 * 1024 * 1024, env: gitEnv() }, (err, stdout, stderr) => {
      if (err) fail(new GitError(redactUrlCredentials(`git ${args.join(" ")} failed: ${(stderr || err.message).trim().slice(-1500)}`)));
      else ok(stdout.trim());
    });
  });
}

const inFlight = new Map<string, Promise<Checkout>>();

/** The checkout of `url` at `version` (HEAD of the default branch when absent). */
export function checkoutGit(cacheDir: string, url: string, version: string | undefined, gitBin = "git"): Promise<Checkout> {
  const key = `${cacheDir}\n${url}\n${version ?? ""}`;
  let p = inFlight.get(key);
  if (!p) {
    p = trustExtraCaForGit(cacheDir)
      .then(() => repoLock.run(repoDirOf(cacheDir, url), () => doCheckout(cacheDir, url, version, gitBin)))
      .finally(() => inFlight.delete(key));
    inFlight.set(key, p);
  }
  return p;
}

const repoDirOf = (cacheDir: string, url: string) => join(cacheDir, createHash("sha256").update(url).digest("hex").slice(0, 16));

/**
 * Checkouts and pruning of one repository's folder take turns (in this process; one agent owns a
 * state dir): a checkout found in the cache is stamped before a prune can look at its age.
 */
const repoLock = new KeyedLock();

async function doCheckout(cacheDir: string, url: string, version: string | undefined, gitBin: string): Promise<Checkout> {
  const repoDir = repoDirOf(cacheDir, url);
  if (version && /^[0-9a-f]{40}$/i.test(version)) {
    const cached = join(repoDir, version.toLowerCase());
    if (existsSync(join(cached, ".git"))) {
      await touch(cached);
      return { dir: cached, commit: version.toLowerCase() };
    }
  }
  await mkdir(repoDir, { recursive: true });
  const tmp = await mkdtemp(join(repoDir, ".tmp-"));
  try {
    await git(["init", "-q"], tmp, gitBin);
    // `--end-of-options` / `--` before anything taken from the work message: a version (or URL)
    // starting with "-" is a name here, never an option such as `--upload-pack=…`.
    await git(["remote", "add", "--", "origin", url], tmp, gitBin);
    const ref = version ?? "HEAD";
    let shallow = true;
    try {
      await git(["fetch", "-q", "--depth", "1", "--end-of-options", "origin", ref], tmp, gitBin);
    } catch {
      shallow = false;
      try {
        await git(["fetch", "-q", "--tags", "--end-of-options", "origin"], tmp, gitBin); // e.g. an abbreviated sha
      } catch (e) {
        throw new GitError(`could not fetch ${redactUrlCredentials(url)}: ${(e as Error).message}`);
      }
    }
    const targets = shallow ? ["FETCH_HEAD"] : [version ?? "origin/HEAD", `origin/${version}`];
    let commit: string | undefined;
    let lastError: unknown;
    for (const target of targets) {
      try {
        // Resolved first (rev-parse knows --end-of-options; checkout of git 2.39 does not), then
        // the commit id — hex, never an option — is checked out.
        const sha = await git(["rev-parse", "--verify", "-q", "--end-of-options", `${target}^{commit}`], tmp, gitBin);
        if (!/^[0-9a-f]{40,64}$/.test(sha)) throw new GitError(`git rev-parse gave no commit for ${target}`);
        await git(["checkout", "-q", "--detach", sha, "--"], tmp, gitBin);
        commit = sha;
        break;
      } catch (e) {
        lastError = e;
      }
    }
    if (!commit) {
      throw new GitError(
        `Unable to checkout version '${version ?? "HEAD"}' of git repo ${redactUrlCredentials(url)} - please ensure that the version exists in the repo. Error: ${(lastError as Error).message}`,
      );
    }
    await git(["submodule", "update", "--init", "--recursive", "-q"], tmp, gitBin);
    const dest = join(repoDir, commit);
    if (existsSync(join(dest, ".git"))) {
      await rm(tmp, { recursive: true, force: true });
    } else {
      await rm(dest, { recursive: true, force: true });
      await rename(tmp, dest);
    }
    await touch(dest);
    return { dir: dest, commit };
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** Marks a checkout as used now (its mtime), for {@link pruneGitCache}. */
async function touch(dir: string): Promise<void> {
  const now = new Date();
  await utimes(dir, now, now).catch(() => undefined);
}

/**
 * Deletes checkouts last used before `cutoff` (ms since epoch), except those in `inUse` (steps
 * may be running in them), and leftovers of interrupted checkouts. Returns the folders deleted.
 */
export async function pruneGitCache(cacheDir: string, cutoff: number, inUse: ReadonlySet<string>): Promise<string[]> {
  const removed: string[] = [];
  const list = (dir: string) => readdir(dir).catch(() => [] as string[]);
  for (const repo of await list(cacheDir)) {
    const repoDir = join(cacheDir, repo);
    await repoLock.run(repoDir, async () => {
      for (const name of await list(repoDir)) {
        const dir = join(repoDir, name);
        // A step may run in the checkout or in a subdirectory of it (`uri#subdir`).
        if ([...inUse].some((p) => p === dir || p.startsWith(dir + sep))) continue;
        const trash = name.startsWith(".trash-");
        const mtime = await stat(dir).then(
          (s) => s.mtimeMs,
          () => Infinity,
        );
        if (!trash && mtime >= cutoff) continue;
        // Out of the cache's names first (atomic), so a half-deleted tree never passes for a checkout.
        const doomed = trash ? dir : join(repoDir, `.trash-${randomUUID()}`);
        if (!trash) await rename(dir, doomed);
        await rm(doomed, { recursive: true, force: true });
        if (!trash) removed.push(dir);
      }
    });
  }
  return removed;
}

/** For a local folder: the git work tree it is in (root, HEAD commit, first remote), if any. */
export async function localGitInfo(dir: string, gitBin = "git"): Promise<{ root: string; commit: string; remote?: string } | undefined> {
  try {
    const root = await git(["rev-parse", "--show-toplevel"], dir, gitBin);
    const commit = await git(["rev-parse", "HEAD"], dir, gitBin);
    const remotes = (await git(["remote"], dir, gitBin)).split("\n").filter(Boolean);
    const info: { root: string; commit: string; remote?: string } = { root, commit };
    if (remotes[0]) info.remote = await git(["remote", "get-url", "--", remotes[0]], dir, gitBin);
    return info;
  } catch {
    return undefined;
  }
}
