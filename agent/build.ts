/**
 * Bundles the agent into one ES module, `agent/dist/parallels-agent.mjs`, for running without
 * tsx (smaller and faster to start; what a container image would ship):
 *
 *   npx tsx agent/build.ts
 *   node --optimize-for-size agent/dist/parallels-agent.mjs --help
 *
 * Uses esbuild, which the repository already has through tsx and wrangler.
 */
import { build } from "esbuild";
import { join } from "node:path";

const outfile = join(import.meta.dirname, "dist", "parallels-agent.mjs");
await build({
  entryPoints: [join(import.meta.dirname, "src", "main.ts")],
  outfile,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node22",
  sourcemap: "linked",
  // Some dependencies are CommonJS and call require(): give the ES module one.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  logLevel: "warning",
});
process.stdout.write(`${outfile}\n`);
