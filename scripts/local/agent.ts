/**
 * Starts a local agent (agent/bin/parallels-agent) as its own process, as the embedded default
 * and the end-to-end tests run it: local executor, state in `stateDir`, JSON logs to a file.
 */
import { spawn } from "node:child_process";
import { mkdirSync, openSync, closeSync } from "node:fs";
import { join } from "node:path";
import { OFFLINE_ENV, ROOT } from "./control-plane";

export interface AgentProcess {
  pid: number;
  logFile: string;
  exited(): boolean;
  /** SIGTERM (a clean stop), SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL at once (crash simulation); the step processes it started keep running. */
  kill(): Promise<void>;
}

export interface AgentOptions {
  controlPlaneUrl: string;
  mlflowUrl: string;
  stateDir: string;
  projectsRoot: string;
  bootstrapToken?: string | undefined;
  pythonBinDir?: string;
  extraArgs?: string[];
  env?: Record<string, string>;
  /** Run the bundle of `npm run agent:build` (what an image ships) instead of the sources. */
  bundle?: boolean;
  /** Runs before the agent's command and must exec it (the PID stays the agent's), e.g. `["ip", "netns", "exec", "<site>"]`. */
  prefix?: string[];
}

/**
 * V8 settings for a process that mostly waits on I/O: a smaller heap and one V8 worker thread
 * (measured: about 10 MB less RSS). `--lite-mode`/`--jitless` would save more but take away
 * WebAssembly, which Node's fetch (undici) needs.
 */
export const AGENT_NODE_FLAGS = ["--optimize-for-size", "--max-semi-space-size=1", "--v8-pool-size=1"];

export async function startAgent(opts: AgentOptions): Promise<AgentProcess> {
  mkdirSync(opts.stateDir, { recursive: true });
  const logFile = join(opts.stateDir, "agent.log");
  const fd = openSync(logFile, "a");
  const args = [
    "--control-plane-url",
    opts.controlPlaneUrl,
    "--mlflow-tracking-uri",
    opts.mlflowUrl,
    "--state-dir",
    opts.stateDir,
    "--projects-root",
    opts.projectsRoot,
    "--health-port",
    "0",
    ...(opts.pythonBinDir ? ["--python-bin-dir", opts.pythonBinDir] : []),
    ...(opts.extraArgs ?? []),
  ];
  const [command, commandArgs] = opts.bundle
    ? [join(ROOT, "node_modules/.bin/node"), [...AGENT_NODE_FLAGS, join(ROOT, "agent/dist/parallels-agent.mjs"), ...args]]
    : [join(ROOT, "agent/bin/parallels-agent"), args];
  const [program, ...programArgs] = [...(opts.prefix ?? []), command, ...commandArgs];
  const child = spawn(program!, programArgs, {
    cwd: ROOT,
    stdio: ["ignore", fd, fd],
    env: { ...process.env, ...OFFLINE_ENV, ...opts.env, ...(opts.bootstrapToken ? { PARALLELS_BOOTSTRAP_TOKEN: opts.bootstrapToken } : {}) },
  }); // a token in the environment, not in `ps`
  closeSync(fd);
  let done = false;
  const exited = new Promise<void>((r) => {
    child.once("exit", () => {
      done = true;
      r();
    });
  });
  const signal = (s: NodeJS.Signals) => {
    try {
      child.kill(s);
    } catch {
      /* gone */
    }
  };
  return {
    pid: child.pid!,
    logFile,
    exited: () => done,
    async stop(graceMs = 10_000) {
      if (done) return;
      signal("SIGTERM");
      const timer = setTimeout(() => signal("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
    async kill() {
      if (done) return;
      signal("SIGKILL");
      await exited;
    },
  };
}
