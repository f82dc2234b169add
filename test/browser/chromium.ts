/**
 * Debian's Chromium for the browser tests, driven by playwright-core (which downloads no browser of
 * its own: this machine reaches only package registries). Installed from apt on first use when
 * `/usr/bin/chromium` is missing and we are root; otherwise the error says how to install it.
 *
 * The flags keep Chromium on this machine: without the background-networking ones it tries to
 * reach Google's servers (updates, sync, field trials), which this machine refuses.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { type BrowserContext, chromium } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";

export const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

/** Installs Debian's `chromium` unless it is there (a few minutes, once). */
export async function ensureChromium(log: (line: string) => void = () => undefined): Promise<string> {
  if (existsSync(CHROMIUM)) return CHROMIUM;
  if (process.getuid?.() !== 0) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium) as root`);
  log("installing Debian's chromium for the browser tests (once): apt-get update && apt-get install -y chromium");
  const run = promisify(execFile);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  await run("apt-get", ["update"], { env, maxBuffer: 64 * 1024 * 1024 });
  await run("apt-get", ["install", "-y", "--no-install-recommends", "chromium"], { env, maxBuffer: 64 * 1024 * 1024 });
  if (!existsSync(CHROMIUM)) throw new Error(`apt-get installed chromium but ${CHROMIUM} is still missing`);
  return CHROMIUM;
}

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** Headless Chromium with a fresh profile of its own, removed on close. */
export async function launchChromium(): Promise<Browser> {
  const executablePath = await ensureChromium((line) => console.log(line));
  const profile = mkdtempSync(join(tmpdir(), "parallels-chromium-"));
  // A persistent context is how playwright takes a --user-data-dir of our choosing.
  const context = await chromium.launchPersistentContext(profile, { executablePath, headless: true, args: CHROMIUM_ARGS });
  return {
    context,
    async close() {
      await context.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

// `tsx test/browser/chromium.ts` installs it ahead of a test run.
if (process.argv[1] && import.meta.filename === process.argv[1]) await ensureChromium((line) => console.log(line));
