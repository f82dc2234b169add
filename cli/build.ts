/**
 * Builds what the package publishes (`npm run build`; `npm ci` runs it through `prepare`):
 *
 * - `dist/client.js` + `dist/client.d.ts`: the SDK, `import … from "mlflow-parallels/client"`.
 *   One ES module for every runtime (browsers, workerd, Node); zod and yaml stay imports (they are
 *   the package's dependencies). Its declarations are bundled into one file, so they resolve under
 *   any `moduleResolution` of a consumer (`nodenext` refuses extensionless relative imports).
 *   They are generated against `cli/tsconfig.client.json`, which has no Node types: a Node API
 *   slipping into the SDK fails the build.
 * - `dist/parallels.mjs`: the CLI (`bin`), one file with its dependencies, for Node 20+.
 */
import { build } from "esbuild";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { generateDtsBundle } from "dts-bundle-generator";

const ROOT = resolve(import.meta.dirname, "..");
export const DIST = join(ROOT, "dist");

export async function buildClient(): Promise<void> {
  await build({
    entryPoints: [join(ROOT, "proto/client/index.ts")],
    outfile: join(DIST, "client.js"),
    bundle: true,
    platform: "neutral",
    format: "esm",
    target: "es2022",
    external: ["zod", "yaml"],
    sourcemap: "linked",
    logLevel: "warning",
  });
  const [dts] = generateDtsBundle([{ filePath: join(ROOT, "proto/client/index.ts"), output: { noBanner: true, exportReferencedTypes: false } }], {
    preferredConfigPath: join(ROOT, "cli/tsconfig.client.json"),
  });
  writeFileSync(join(DIST, "client.d.ts"), dts!);
}

export async function buildCli(): Promise<void> {
  const outfile = join(DIST, "parallels.mjs");
  await build({
    entryPoints: [join(ROOT, "cli/main.ts")],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    // commander and read are CommonJS and call require(): give the ES module one.
    banner: { js: "#!/usr/bin/env node\nimport { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
    logLevel: "warning",
  });
  chmodSync(outfile, 0o755);
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  mkdirSync(DIST, { recursive: true });
  await Promise.all([buildClient(), buildCli()]);
  process.stdout.write(`built ${join(DIST, "client.js")}, client.d.ts and parallels.mjs\n`);
}
