/**
 * An on-prem site for the hybrid tests: a network namespace with only its loopback, whose one way
 * out is a proxy on the host. Inside, `127.0.0.1:3128` is socat listening and forwarding to a Unix
 * socket (a file in the run dir: the one thing both sides share); on the host, socat takes that
 * socket to the proxy on the host's 127.0.0.1. Nothing else of the host is reachable from inside,
 * and no address outside loopback exists: traffic stays on this machine.
 *
 * Needs root (`ip netns add`). Named `parallels-site-<pid>-<n>` so a suite killed midway leaves
 * something the next one can recognise and remove ({@link removeStaleSites}).
 */
import { spawnSync } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { isAlive, launch, logTail, stopProcesses } from "../k8s/processes";

export interface Site {
  /** The namespace's name. */
  name: string;
  /** Runs a command inside: `[...prefix, binary, ...args]`. */
  prefix: string[];
  /** The proxy as the site sees it: `127.0.0.1:<port>` inside the namespace. */
  proxyPort: number;
  /** Runs a command inside and waits for it. */
  exec(args: string[], opts?: { env?: NodeJS.ProcessEnv; timeoutMs?: number }): { status: number | null; stdout: string; stderr: string };
  /** Stops the wire's processes and anything left inside, and deletes the namespace. */
  destroy(): Promise<void>;
}

const PREFIX = "parallels-site-";
let sites = 0;

function ip(args: string[]): string {
  const r = spawnSync("ip", args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ip ${args.join(" ")} failed (${r.status}): ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/** Every process still inside `name`, SIGKILLed, then the namespace deleted. */
function deleteNamespace(name: string): void {
  const pids = spawnSync("ip", ["netns", "pids", name], { encoding: "utf8" }).stdout.split(/\s+/).filter(Boolean).map(Number);
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* gone meanwhile */
    }
  }
  spawnSync("ip", ["netns", "del", name], { stdio: "ignore" });
}

/** Removes the sites of suites that are gone (their PID is in the name). */
export function removeStaleSites(log: (line: string) => void): void {
  const r = spawnSync("ip", ["netns", "list"], { encoding: "utf8" });
  for (const line of r.stdout.split("\n")) {
    const name = line.split(" ")[0] ?? "";
    const owner = new RegExp(`^${PREFIX}(\\d+)-\\d+$`).exec(name)?.[1];
    if (!owner || isAlive(Number(owner))) continue;
    log(`[hybrid] removing network namespace ${name}, left by a suite that is gone`);
    deleteNamespace(name);
  }
}

export async function createSite(runDir: string, opts: { hostProxyPort: number; proxyPort?: number }): Promise<Site> {
  if (process.getuid?.() !== 0) throw new Error("the on-prem site is a network namespace: the hybrid tests need root (ip netns add)");
  const name = `${PREFIX}${process.pid}-${++sites}`;
  const proxyPort = opts.proxyPort ?? 3128;
  const sock = join(runDir, `${name}.sock`);
  const wire = { host: `${name}-wire-host`, inner: `${name}-wire-inner` };
  const prefix = ["ip", "netns", "exec", name];
  ip(["netns", "add", name]);
  const destroy = async () => {
    await stopProcesses(runDir, [wire.inner, wire.host]).catch(() => undefined);
    deleteNamespace(name);
    rmSync(sock, { force: true });
  };
  try {
    ip(["-n", name, "link", "set", "lo", "up"]);
    await launch(runDir, { name: wire.host, prefix: [], binary: "socat", args: [`UNIX-LISTEN:${sock},fork,unlink-early,mode=600`, `TCP:127.0.0.1:${opts.hostProxyPort}`] });
    await until(
      () => existsSync(sock),
      () => `socat did not make ${sock}:\n${logTail(runDir, wire.host)}`,
    );
    await launch(runDir, { name: wire.inner, prefix, binary: "socat", args: [`TCP-LISTEN:${proxyPort},bind=127.0.0.1,fork,reuseaddr`, `UNIX-CONNECT:${sock}`] });
    const listening = () => spawnSync("ip", ["netns", "exec", name, "ss", "-Hltn", `sport = :${proxyPort}`], { encoding: "utf8" }).stdout.includes(`127.0.0.1:${proxyPort}`);
    await until(listening, () => `socat did not listen on 127.0.0.1:${proxyPort} in ${name}:\n${logTail(runDir, wire.inner)}`);
  } catch (err) {
    await destroy();
    throw err;
  }
  return {
    name,
    prefix,
    proxyPort,
    exec(args, o = {}) {
      const r = spawnSync(prefix[0]!, [...prefix.slice(1), ...args], { encoding: "utf8", env: o.env ?? process.env, timeout: o.timeoutMs ?? 30_000 });
      return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
    },
    destroy,
  };
}

async function until(ok: () => boolean, failure: () => string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(failure());
    await new Promise((r) => setTimeout(r, 50));
  }
}
