/**
 * A real OCI registry on 127.0.0.1 for the tests, the bench and the demo: Debian's
 * `docker-registry` (the CNCF distribution registry, 2.8), storage in the run dir, deletes
 * enabled. Started as a recorded process of the run dir (scripts/k8s/processes.ts), so only it is
 * ever stopped.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { launch, logTail, stopProcesses } from "../k8s/processes";
import { freePort } from "../local/ports";

export interface TestRegistry {
  /** `127.0.0.1:<port>` */
  host: string;
  runDir: string;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `port`: the one to try first (a fixed port keeps image names stable across runs); then free ones. */
export async function startRegistry(runDir: string, name = "registry", port0?: number): Promise<TestRegistry> {
  for (let tries = 0; ; tries++) {
    const port = tries === 0 && port0 ? port0 : await freePort();
    const storage = join(runDir, `${name}-data`);
    mkdirSync(storage, { recursive: true });
    const config = join(runDir, `${name}.yml`);
    writeFileSync(config, ["version: 0.1", "log: {level: warn}", `storage: {filesystem: {rootdirectory: ${storage}}, delete: {enabled: true}}`, `http: {addr: 127.0.0.1:${port}}`, ""].join("\n"));
    await launch(runDir, { name, prefix: [], binary: "docker-registry", args: ["serve", config] });
    const host = `127.0.0.1:${port}`;
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      const ok = await fetch(`http://${host}/v2/`, { signal: AbortSignal.timeout(1000) }).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ok) return { host, runDir, stop: async () => void (await stopProcesses(runDir, [name])) };
      await sleep(100);
    }
    await stopProcesses(runDir, [name]);
    if (tries < 2 && (/address already in use/.test(logTail(runDir, name)) || (tries === 0 && port0))) continue;
    throw new Error(`the registry did not answer on ${host} within 15 s:\n${logTail(runDir, name)}`);
  }
}
