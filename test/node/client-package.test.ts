/**
 * The SDK as a consumer gets it: `import … from "mlflow-parallels/client"` through the package's
 * `exports`, from a project of its own whose node_modules holds this package (a symlink, as
 * `npm link` or a workspace makes it). The built module runs on the machine's Node (20 here, the
 * oldest the package supports), and its bundled declarations type-check a consumer under both
 * `nodenext` and `bundler` resolution, with the declarations themselves checked (no skipLibCheck).
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildClient, DIST } from "../../cli/build";
import { freePort, ROOT } from "../../scripts/local/control-plane";

const run = promisify(execFile);
/** The machine's Node when there is one (20 here), else the one running the tests. */
const NODE = existsSync("/usr/bin/node") ? "/usr/bin/node" : process.execPath;
const TSC = join(ROOT, "node_modules/.bin/tsc");
let consumer: string;

beforeAll(async () => {
  await buildClient();
  consumer = mkdtempSync(join(tmpdir(), "parallels-consumer-"));
  mkdirSync(join(consumer, "node_modules"));
  symlinkSync(ROOT, join(consumer, "node_modules", "mlflow-parallels"), "dir");
  writeFileSync(join(consumer, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
}, 120_000);

afterAll(() => {
  if (!consumer) return;
  // The link first, so that nothing could ever walk into the repository through it.
  unlinkSync(join(consumer, "node_modules", "mlflow-parallels"));
  rmSync(consumer, { recursive: true, force: true });
});

describe("mlflow-parallels/client, imported by another project", () => {
  it("is plain web JavaScript: no Node built-ins in the module", () => {
    const js = readFileSync(join(DIST, "client.js"), "utf8");
    expect(js).not.toMatch(/from\s*["']node:|require\(/);
    // Its only imports are the package's dependencies.
    expect([...new Set([...js.matchAll(/^import .* from "([^"]+)";$/gm)].map((m) => m[1]))].sort()).toEqual(["yaml", "zod"]);
  });

  it("imports and runs on the machine's Node; its errors are the SDK's one class", { timeout: 60_000 }, async () => {
    const closed = await freePort(); // nothing listens there
    writeFileSync(
      join(consumer, "main.mjs"),
      `
import { ParallelsClient, ParallelsError, isParallelsError, Paginator, isTerminalRun } from "mlflow-parallels/client";
const out = { node: process.version, exports: [typeof ParallelsClient, typeof Paginator, isTerminalRun("failed")] };
try { new ParallelsClient({ baseUrl: "not a url" }); } catch (e) { out.badUrl = e.message; }
const client = new ParallelsClient({ baseUrl: "http://127.0.0.1:${closed}/", token: "t", retry: { maxRetries: 1, baseDelayMs: 10 } });
out.baseUrl = client.baseUrl;
try { await client.runs.list({ dag: "wordcount" }).page(); } catch (e) {
  out.error = { instance: e instanceof ParallelsError, guard: isParallelsError(e), code: e.code, status: e.status, path: e.path };
}
console.log(JSON.stringify(out));
`,
    );
    const { stdout } = await run(NODE, ["main.mjs"], { cwd: consumer });
    const out = JSON.parse(stdout);
    if (NODE === "/usr/bin/node") expect(out.node).toMatch(/^v2\d\./);
    expect(out.exports).toEqual(["function", "function", true]);
    expect(out.badUrl).toContain("baseUrl must be an absolute http(s) URL");
    expect(out.baseUrl).toBe(`http://127.0.0.1:${closed}`);
    expect(out.error).toEqual({ instance: true, guard: true, code: "network_error", status: 0, path: "/v1/runs" });
  });

  const typed = `
import { ParallelsClient, ParallelsError, type RunView, type RunStatus, type DagInput } from "mlflow-parallels/client";
const client = new ParallelsClient({ baseUrl: "http://127.0.0.1:8787", token: "t" });
export async function latest(dag: string): Promise<RunView | undefined> {
  for await (const run of client.runs.list({ dag, status: "succeeded" })) return run;
  return undefined;
}
export const statusOf = async (id: string): Promise<RunStatus> => (await client.runs.get(id)).status;
export const doc: DagInput = { name: "wordcount", nodes: [{ id: "split", project: { uri: "./split" } }] };
export const applied = async () => (await client.dags.apply(doc)).version satisfies number;
export const code = (e: unknown) => (e instanceof ParallelsError ? e.details.map((d) => d.path) : []);
`;

  for (const resolution of ["nodenext", "bundler"] as const) {
    it(`type-checks a consumer under moduleResolution ${resolution}, and refuses a wrong call`, { timeout: 120_000 }, async () => {
      const dir = join(consumer, resolution);
      mkdirSync(dir, { recursive: true });
      const module = resolution === "nodenext" ? "nodenext" : "esnext";
      const options = { strict: true, noEmit: true, module, moduleResolution: resolution, target: "es2022", lib: ["es2023", "dom", "dom.iterable"], types: [], skipLibCheck: false };
      // good.ts and bad.ts in one run (tsc is slow here): the one error must be bad.ts's.
      writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions: options, files: ["good.ts", "bad.ts"] }));
      writeFileSync(join(dir, "good.ts"), typed);
      // A number where the DAG's name goes: the declarations must say so.
      writeFileSync(join(dir, "bad.ts"), `import { ParallelsClient } from "mlflow-parallels/client";\nnew ParallelsClient({ baseUrl: "x" }).runs.submit({ dag: 42 });\n`);
      const bad = await run(TSC, ["-p", "tsconfig.json"], { cwd: dir }).then(
        () => "",
        (e: { stdout: string }) => e.stdout,
      );
      expect(bad).toMatch(/^bad\.ts\(2,\d+\): error TS2322: Type 'number' is not assignable to type 'string'/);
      expect(bad.match(/error TS/g)).toHaveLength(1);
    });
  }
});
