/**
 * The web UI's bundle (ui/dist), which the control plane serves as static assets (wrangler.toml
 * `[assets]`): `npm ci` builds it (prepare), and the launchers check it before starting the
 * control plane, building it again when it is missing or older than its sources (a pull that
 * brought UI changes, an edit), so `npm run dev` and `npm run demo` always serve the UI as checked out.
 */
import { execFile } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

const ROOT = resolve(import.meta.dirname, "../..");
const UI = join(ROOT, "ui");
const BUILT = join(UI, "dist/index.html");

/** The newest modification time of the UI's sources, and of what they import from proto/. */
function newestSource(dirs = [join(UI, "src"), join(ROOT, "proto")], files = [join(UI, "index.html"), join(UI, "vite.config.ts")]): number {
  let newest = Math.max(...files.map((f) => (existsSync(f) ? statSync(f).mtimeMs : 0)));
  for (const dir of dirs) {
    for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
      if (entry.isFile()) newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
    }
  }
  return newest;
}

export function uiBuildCurrent(): boolean {
  return existsSync(BUILT) && statSync(BUILT).mtimeMs >= newestSource();
}

/**
 * Builds ui/dist with Vite unless it is current (about 5–10 s on 2 cores) — in a process of its
 * own with NODE_ENV=production, as `npm run build:ui` does: Vite takes NODE_ENV from the
 * environment, and a test runner's (`test`) would bundle React's development build, whose
 * StrictMode runs every effect twice — not what users get.
 */
export async function ensureUiBuilt(log: (line: string) => void = () => undefined): Promise<void> {
  if (uiBuildCurrent()) return;
  log(existsSync(BUILT) ? "rebuilding the web UI (its sources changed) …" : "building the web UI (ui/dist) …");
  await run(process.execPath, [join(ROOT, "node_modules/vite/bin/vite.js"), "build", "-c", join(UI, "vite.config.ts"), "--logLevel", "warn"], {
    cwd: ROOT,
    env: { ...process.env, NODE_ENV: "production" },
  });
}
