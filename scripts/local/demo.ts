/**
 * `npm run demo`: the product's main job on the embedded default. Brings up the control plane
 * (wrangler dev, local D1) on 127.0.0.1, registers the local cluster, stores the example DAG
 * (examples/wordcount/dag.yaml) and submits a run, then shows the run.
 *
 * The agent that executes the work arrives with the NATS/agent issue; until then the run stops
 * at its first dispatched node, whose start message waits in the transactional outbox.
 * `--exit` stops after submitting (used by the tests); otherwise it serves until Ctrl-C.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ROOT, startControlPlane } from "./control-plane";
import { localAdminToken } from "./dev-vars";

const { values } = parseArgs({
  options: {
    exit: { type: "boolean", default: false },
    port: { type: "string", default: "8787" },
    state: { type: "string", default: join(ROOT, ".state/demo") },
    dag: { type: "string", default: join(ROOT, "examples/wordcount/dag.yaml") },
  },
});

const token = localAdminToken();
console.log("starting the control plane (wrangler dev, local D1)…");
const cp = await startControlPlane({ stateDir: values.state!, port: Number(values.port), vars: { PARALLELS_ADMIN_TOKEN: token } });

async function api(method: string, path: string, body?: string, type = "application/json") {
  const res = await fetch(cp.url + path, { method, headers: { authorization: `Bearer ${token}`, "content-type": type }, body });
  const json = (await res.json()) as any;
  if (!res.ok && res.status !== 409) throw new Error(`${method} ${path} → ${res.status}: ${JSON.stringify(json.error)}`);
  return json;
}

try {
  console.log(`control plane listening on ${cp.url} (OpenAPI: ${cp.url}/v1/openapi.json; admin token in .dev.vars)`);
  await api("POST", "/v1/clusters", JSON.stringify({ name: "local", kind: "local", labels: { embedded: "true" } }));
  const yaml = readFileSync(values.dag!, "utf8");
  const name = /^name:\s*(\S+)/m.exec(yaml)?.[1];
  if (!name) throw new Error(`${values.dag} has no top-level name`);
  const dag = await api("PUT", `/v1/dags/${name}`, yaml, "application/yaml");
  console.log(`DAG "${dag.name}" version ${dag.version}: ${dag.spec.nodes.map((n: { id: string }) => n.id).join(" → ")}`);
  const run = await api("POST", "/v1/runs", JSON.stringify({ dag: dag.name }));
  console.log(`run ${run.id}: ${run.status}`);
  for (const n of run.nodes) console.log(`  ${n.nodeId.padEnd(12)} ${n.status}${n.attempt ? ` (attempt ${n.attempt})` : ""}`);
  console.log("no agent runs yet in this version: dispatched nodes wait in the outbox for it");
  console.log(`see it again: curl -H "Authorization: Bearer $TOKEN" ${cp.url}/v1/runs/${run.id}`);
} catch (err) {
  await cp.stop();
  throw err;
}
if (values.exit) {
  await cp.stop();
} else {
  console.log("serving until Ctrl-C");
  const stop = () => void cp.stop().then(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
