/**
 * `npm run demo`: the product's main job on the embedded default. Brings up nats-server,
 * `mlflow server` and the control plane on 127.0.0.1 (scripts/local/embedded.ts), registers the
 * local cluster, starts a local agent, submits the example DAG (examples/wordcount/dag.yaml),
 * shows progress as it runs, prints the MLflow links and the result, and exits 0 when the run
 * succeeds. `--keep` leaves everything serving until Ctrl-C; `-P name=value` sets a DAG param.
 * `--containers podman` runs every step in the image built from its project (buildah, the same
 * generated Dockerfile a cluster builds) with podman, through a registry on 127.0.0.1.
 */
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import type { z } from "zod";
import { DagView, RunView } from "../../proto/api";
import type { ErrorBody } from "../../proto/errors";
import { isTerminalStatus, MlflowClient } from "../../proto/mlflow";
import { parseParamArgs } from "../../proto/mlproject";
import { isTerminalRun } from "../../proto/status";
import type { AgentProcess } from "./agent";
import { ROOT } from "./control-plane";
import { localAdminToken } from "./dev-vars";
import { DEFAULT_PORTS, startEmbedded, type Embedded } from "./embedded";
import { startLocalAgent } from "./local-agent";
import { type LocalImages, startLocalImages } from "../images/local-images";
import { ensurePythonTools } from "./python-tools";
import { ensureUiBuilt } from "./ui-build";

const { values } = parseArgs({
  options: {
    state: { type: "string", default: join(ROOT, ".state/demo") },
    dag: { type: "string", default: join(ROOT, "examples/wordcount/dag.yaml") },
    "free-ports": { type: "boolean", default: false },
    keep: { type: "boolean", default: false },
    "timeout-seconds": { type: "string", default: "600" },
    containers: { type: "string" },
    // The run's DAG params, as `mlflow run` takes them: `-P top=5`.
    param: { type: "string", short: "P", multiple: true, default: [] },
  },
});
const runParams = Object.fromEntries(parseParamArgs(values.param!));

const stateDir = values.state!;
const token = localAdminToken();
const say = (line: string) => console.log(line);
let env: Embedded | undefined;
let agent: AgentProcess | undefined;
let images: LocalImages | undefined;
const stopAll = async () => {
  await agent?.stop();
  await images?.stop();
  await env?.stop();
};

async function main(): Promise<boolean> {
  await ensurePythonTools(say);
  await ensureUiBuilt(say);
  say("starting nats-server, mlflow server and the control plane on 127.0.0.1 …");
  env = await startEmbedded({ stateDir, adminToken: token, ports: values["free-ports"] ? "free" : DEFAULT_PORTS });
  say(`web UI         ${env.control.url}/   (sign in with the admin token)`);
  say(`control plane  ${env.control.url}   (OpenAPI ${env.control.url}/v1/openapi.json; admin token in .dev.vars)`);
  say(`MLflow         ${env.mlflow.url}`);
  say(`NATS           ${env.natsUrl}`);

  const api = async (method: string, path: string, body?: string, type = "application/json") => {
    const res = await fetch(env!.control.url + path, { method, headers: { authorization: `Bearer ${token}`, "content-type": type }, body });
    const json: unknown = await res.json();
    return { status: res.status, body: json };
  };
  /** A call that must succeed: its answer, read with the route's response schema (proto/api). */
  const must = async <T>(schema: z.ZodType<T>, method: string, path: string, body?: string, type?: string): Promise<T> => {
    const r = await api(method, path, body, type);
    if (r.status >= 300) throw new Error(`${method} ${path} → ${r.status}: ${JSON.stringify((r.body as Partial<ErrorBody>).error)}`);
    return schema.parse(r.body);
  };

  if (values.containers !== undefined) {
    if (values.containers !== "podman") throw new Error(`--containers ${values.containers}: only podman is supported`);
    images = await startLocalImages(stateDir, { freePorts: values["free-ports"] ?? false, log: say });
    say(`registry       ${images.registry.host}   (steps run in images built from their projects, with podman)`);
  }
  agent = await startLocalAgent(env, {
    stateDir: join(stateDir, "agent"),
    projectsRoot: dirname(values.dag!),
    ...(images ? { extraArgs: images.agentArgs, env: images.agentEnv } : {}),
  });
  say(`agent          started (logs: ${agent.logFile})`);

  const yaml = (await import("node:fs")).readFileSync(values.dag!, "utf8");
  const name = /^name:\s*(\S+)/m.exec(yaml)?.[1];
  if (!name) throw new Error(`${values.dag} has no top-level name`);
  const dag = await must(DagView, "PUT", `/v1/dags/${name}`, yaml, "application/yaml");
  say(`\nDAG "${dag.name}" v${dag.version}: ${dag.spec.nodes.map((n) => n.id).join(" → ")}`);
  const submitted = await must(RunView, "POST", "/v1/runs", JSON.stringify({ dag: dag.name, params: runParams }));
  say(`run ${submitted.id} submitted with params ${JSON.stringify(submitted.params)}\n`);

  // Progress: one line per change of a node's state.
  const seen = new Map<string, string>();
  const deadline = Date.now() + Number(values["timeout-seconds"]) * 1000;
  let run = submitted;
  while (!isTerminalRun(run.status)) {
    if (Date.now() > deadline) throw new Error(`the run did not finish within ${values["timeout-seconds"]} s (agent logs: ${agent.logFile})`);
    if (agent.exited()) throw new Error(`the agent exited (logs: ${agent.logFile})`);
    await new Promise((r) => setTimeout(r, 300));
    run = await must(RunView, "GET", `/v1/runs/${submitted.id}`);
    for (const n of run.nodes ?? []) {
      const p = n.partitions;
      const line = `${n.status}${n.attempt > 1 ? ` (attempt ${n.attempt})` : ""}${n.status === "building" && n.imageRef ? ` — image ${n.imageRef} (since ${n.buildingSince?.slice(11, 19)})` : ""}${p.total > 1 ? ` — partitions ${p.done}/${p.total} done, ${p.running} running${p.failed ? `, ${p.failed} failed` : ""}` : ""}`;
      if (seen.get(n.nodeId) !== line) {
        seen.set(n.nodeId, line);
        say(`  ${new Date().toISOString().slice(11, 19)}  ${n.nodeId.padEnd(8)} ${line}${n.message && n.status === "failed" ? `: ${n.message}` : ""}`);
      }
    }
  }
  say(`\nrun ${run.id}: ${run.status.toUpperCase()}`);

  // Where to look in MLflow — the parent run the control plane knows (GET /v1/runs/{id}) and
  // each step's run — and the result itself (an artifact of the last step's run).
  const mlflow = new MlflowClient({ trackingUri: env.mlflow.url });
  const nodes = run.nodes ?? [];
  const last = nodes.find((n) => n.nodeId === dag.spec.nodes.at(-1)?.id);
  if (run.mlflowRunId) {
    // The agent closes the parent once the control plane says the run is over.
    let status = (await mlflow.getRun(run.mlflowRunId)).info.status;
    for (let i = 1; i < 40 && !isTerminalStatus(status); i++) {
      await new Promise((r) => setTimeout(r, 250));
      status = (await mlflow.getRun(run.mlflowRunId)).info.status;
    }
    say(`MLflow parent run  ${run.mlflowRunId}  ${run.mlflowUrl ?? ""}  (${status})`);
  } else {
    say(`MLflow parent run  none: ${run.mlflowNote}`);
  }
  for (const n of nodes) if (n.mlflowUrl) say(`  ${n.nodeId.padEnd(8)} ${n.mlflowUrl}`);
  if (run.status === "succeeded" && last?.mlflowRunId) {
    const counts = JSON.parse(await mlflow.downloadArtifactText(last.mlflowRunId, "counts.json")) as Record<string, number>;
    const top = Object.entries(counts)
      .slice(0, 5)
      .map(([w, n]) => `${w} ${n}`);
    say(`\nresult (counts.json of ${last.nodeId}): ${Object.keys(counts).length} distinct words; top: ${top.join(", ")}`);
  }
  return run.status === "succeeded";
}

const stopOnSignal = () => void stopAll().then(() => process.exit(130));
process.on("SIGINT", stopOnSignal);
process.on("SIGTERM", stopOnSignal);
try {
  const ok = await main();
  if (values.keep) {
    say(`\nserving until Ctrl-C; the web UI is at ${env!.control.url}/ (admin token: PARALLELS_ADMIN_TOKEN in .dev.vars)`);
  } else {
    await stopAll();
    process.exit(ok ? 0 : 1);
  }
} catch (err) {
  console.error(`demo failed: ${(err as Error).message}`);
  await stopAll();
  process.exit(1);
}
