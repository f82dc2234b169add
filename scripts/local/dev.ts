/**
 * `npm run dev`: the embedded default serving until Ctrl-C — nats-server, `mlflow server`, the
 * control plane (migrated local D1) and a local agent for the cluster `local`, all on 127.0.0.1,
 * state in `.state/dev`. Submit DAGs with the admin token from `.dev.vars`. `--free-ports` avoids
 * the usual ports; `--projects-root` is where relative project paths and inputs resolve (default:
 * the directory `npm run dev` was started in).
 */
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { AgentProcess } from "./agent";
import { ROOT } from "./control-plane";
import { localAdminToken } from "./dev-vars";
import { DEFAULT_PORTS, startEmbedded, type Embedded } from "./embedded";
import { startLocalAgent } from "./local-agent";
import { ensurePythonTools } from "./python-tools";
import { ensureUiBuilt } from "./ui-build";

const { values } = parseArgs({
  options: {
    state: { type: "string", default: join(ROOT, ".state/dev") },
    "free-ports": { type: "boolean", default: false },
    // npm runs scripts in the package root; INIT_CWD is where the user typed the command.
    "projects-root": { type: "string", default: process.env.INIT_CWD ?? process.cwd() },
  },
});

let env: Embedded | undefined;
let agent: AgentProcess | undefined;
const stopAll = async () => {
  await agent?.stop();
  await env?.stop();
};
const stopOnSignal = () => void stopAll().then(() => process.exit(0));
process.on("SIGINT", stopOnSignal);
process.on("SIGTERM", stopOnSignal);

try {
  const stateDir = values.state!;
  await ensurePythonTools((line) => console.log(line));
  await ensureUiBuilt((line) => console.log(line));
  env = await startEmbedded({ stateDir, adminToken: localAdminToken(), ports: values["free-ports"] ? "free" : DEFAULT_PORTS });
  agent = await startLocalAgent(env, { stateDir: join(stateDir, "agent"), projectsRoot: resolve(values["projects-root"]!) });
  console.log(`web UI         ${env.control.url}/   (sign in with the admin token)`);
  console.log(`control plane  ${env.control.url}   (API ${env.control.url}/v1, OpenAPI ${env.control.url}/v1/openapi.json)`);
  console.log(`MLflow         ${env.mlflow.url}`);
  console.log(`NATS           ${env.natsUrl}`);
  console.log(`agent          cluster "local", projects root ${resolve(values["projects-root"]!)} (logs: ${agent.logFile})`);
  console.log("admin token: PARALLELS_ADMIN_TOKEN in .dev.vars; Ctrl-C stops everything");
} catch (err) {
  console.error(`dev failed: ${(err as Error).message}`);
  await stopAll();
  process.exit(1);
}
