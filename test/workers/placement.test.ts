// Placement across clusters through the real API: clusters registered and beating, DAGs whose
// nodes select by labels (and ask for GPUs), runs submitted; where each node landed is read back
// from the run and from the outbox's NATS subjects.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { call, outboxRows, unique, workspace } from "./harness";

async function sha256(text: string) {
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

type Ws = Awaited<ReturnType<typeof workspace>>;

/** A cluster made through the API, its agent registered as registration would leave it (that step needs NATS). */
async function cluster(ws: Ws, name: string, kind: string, labels: Record<string, string>) {
  const created = await call("POST", "/v1/clusters", { token: ws.admin, body: { name, kind, labels } });
  expect(created.status).toBe(201);
  const credential = `plc_${unique("agent")}`;
  await env.DB.prepare("UPDATE clusters SET agent_credential_hash = ?, registered_at = ?, bootstrap_token_hash = NULL WHERE id = ?")
    .bind(await sha256(credential), Date.now(), created.body.cluster.id)
    .run();
  return {
    id: created.body.cluster.id as string,
    /** A heartbeat through the API, as the agent sends it. */
    beat: async (allocatable: { cpu: string; memory: string; gpu: number }, runningJobs = 0) => {
      const r = await call("POST", "/v1/agent/heartbeat", { token: credential, body: { agentVersion: "0.1.0", kubernetesVersion: "v1.34.4", allocatable, runningJobs } });
      expect(r.status).toBe(200);
    },
  };
}

/** Puts the DAG and submits a run of it: the answer. */
async function submit(ws: Ws, nodes: Record<string, unknown>[]) {
  const name = unique("placed");
  const put = await call("PUT", `/v1/dags/${name}`, { token: ws.write, body: { name, nodes } });
  expect(put.status, JSON.stringify(put.body)).toBe(201);
  return call("POST", "/v1/runs", { token: ws.write, body: { dag: name } });
}
const placedOn = (run: { nodes: { nodeId: string; clusterId: string }[] }) => Object.fromEntries(run.nodes.map((n) => [n.nodeId, n.clusterId]));

/** The hybrid setup: a cloud cluster with GPUs and two on-prem CPU clusters, all beating. */
async function hybrid() {
  const ws = await workspace();
  const eks = await cluster(ws, "eks", "eks", { site: "cloud", tier: "batch", gpu: "true" });
  const ezmeral = await cluster(ws, "ezmeral", "ezmeral", { site: "onprem", tier: "batch" });
  const lab = await cluster(ws, "lab", "ezmeral", { site: "onprem", tier: "batch" });
  await eks.beat({ cpu: "64", memory: "256Gi", gpu: 4 }, 6); // 64/7 ≈ 9 cores per Job
  await ezmeral.beat({ cpu: "32", memory: "128Gi", gpu: 0 }, 1); // 16 per Job
  await lab.beat({ cpu: "8", memory: "32Gi", gpu: 0 }, 0); // 8 per Job
  return { ws, eks, ezmeral, lab };
}

describe("placement across clusters", () => {
  it("a selector node lands on the matching online cluster with the most free capacity, a GPU node on the GPU cluster; the work goes to that cluster's subject", async () => {
    const { ws, eks, ezmeral } = await hybrid();
    const run = await submit(ws, [
      { id: "prepare", project: { uri: "p" }, cluster: { site: "onprem" } },
      { id: "train", project: { uri: "t" }, cluster: { tier: "batch" }, resources: { gpu: 1, cpu: "4", memory: "16Gi" }, after: ["prepare"] },
      { id: "report", project: { uri: "r" }, cluster: { tier: "batch" }, after: ["train"] },
    ]);
    expect(run.status, JSON.stringify(run.body)).toBe(201);
    // report: the most free CPU per Job among the three batch clusters is ezmeral's; train: the only one with GPUs.
    expect(placedOn(run.body)).toEqual({ prepare: ezmeral.id, train: eks.id, report: ezmeral.id });
    expect((await outboxRows(run.body.id)).map((r) => r.subject)).toEqual([`work.${ezmeral.id}.start`]);
  });

  it("follows the heartbeats: a busier cluster loses the next run, one that stopped beating gets none", async () => {
    const { ws, ezmeral, lab } = await hybrid();
    const nodes = [{ id: "prepare", project: { uri: "p" }, cluster: { site: "onprem" } }];
    expect(placedOn((await submit(ws, nodes)).body)).toEqual({ prepare: ezmeral.id });
    await ezmeral.beat({ cpu: "32", memory: "128Gi", gpu: 0 }, 7); // 4 cores per Job now, lab has 8
    expect(placedOn((await submit(ws, nodes)).body)).toEqual({ prepare: lab.id });
    // lab's last heartbeat is a minute old: offline, so ezmeral again, busy as it is.
    await env.DB.prepare("UPDATE clusters SET last_heartbeat_at = ? WHERE id = ?")
      .bind(Date.now() - 60_000, lab.id)
      .run();
    expect(placedOn((await submit(ws, nodes)).body)).toEqual({ prepare: ezmeral.id });
  });

  it("when nothing can take a node, the run is refused with why, on that node's field: no such labels, none online, no GPUs, too big", async () => {
    const { ws, ezmeral, lab } = await hybrid();
    const refused = async (node: Record<string, unknown>) => {
      const r = await submit(ws, [
        { id: "ok", project: { uri: "p" }, cluster: "eks" },
        { id: "x", project: { uri: "x" }, ...node },
      ]);
      expect(r.status, JSON.stringify(r.body)).toBe(422);
      expect(r.body.error.code).toBe("invalid_dag");
      expect(r.body.error.details).toHaveLength(1);
      expect(r.body.error.details[0].path).toBe("nodes[1].cluster");
      return r.body.error.details[0].message as string;
    };
    expect(await refused({ cluster: { site: "mars" } })).toBe('no cluster has the labels {"site":"mars"}');
    expect(await refused({ cluster: { site: "onprem" }, resources: { gpu: 2 } })).toBe(
      'the node asks for 2 GPUs (nvidia.com/gpu) and no online cluster with the labels {"site":"onprem"} has that many allocatable (ezmeral: 0, lab: 0)',
    );
    expect(await refused({ cluster: { tier: "batch" }, resources: { gpu: 8 } })).toBe(
      'the node asks for 8 GPUs (nvidia.com/gpu) and no online cluster with the labels {"tier":"batch"} has that many allocatable (eks: 4, ezmeral: 0, lab: 0)',
    );
    expect(await refused({ cluster: { site: "onprem" }, resources: { memory: "1Ti" } })).toBe(
      'the node asks for cpu 0, memory 1Ti per pod, more than any online cluster with the labels {"site":"onprem"} has allocatable (ezmeral: cpu 32, memory 128Gi; lab: cpu 8, memory 32Gi)',
    );
    await env.DB.prepare("UPDATE clusters SET last_heartbeat_at = ? WHERE id IN (?, ?)")
      .bind(Date.now() - 60_000, ezmeral.id, lab.id)
      .run();
    await call("POST", "/v1/clusters", { token: ws.admin, body: { name: "new-site", kind: "ezmeral", labels: { site: "onprem" } } });
    expect(await refused({ cluster: { site: "onprem" } })).toBe('no cluster with the labels {"site":"onprem"} is online (ezmeral: offline, lab: offline, new-site: no agent registered yet)');
    // Refused runs write nothing.
    expect((await call("GET", "/v1/runs", { token: ws.read })).body.items).toEqual([]);
  });

  it("a run's nodes that can run at the same time count against each other's cluster; a chain does not compete with itself", async () => {
    const ws = await workspace();
    const eks = await cluster(ws, "eks", "eks", { gpu: "true" });
    const eks2 = await cluster(ws, "eks-2", "eks", { gpu: "true" });
    await eks.beat({ cpu: "64", memory: "256Gi", gpu: 4 }, 0);
    await eks2.beat({ cpu: "64", memory: "256Gi", gpu: 4 }, 0);
    const gpuStep = (id: string, after: string[] = []) => ({ id, project: { uri: id }, cluster: { gpu: "true" }, resources: { gpu: 1 }, after });
    // Three independent training steps: the heartbeats say both clusters are idle, so without
    // counting its own nodes the run would put all three on the first by name.
    const fan = await submit(ws, [gpuStep("a"), gpuStep("b"), gpuStep("c"), gpuStep("merge", ["a", "b", "c"])]);
    expect(fan.status, JSON.stringify(fan.body)).toBe(201);
    // a → eks (tie, first by name); b → eks-2 (eks now shares its GPUs with a); c → eks (2 each, tie);
    // merge runs after all three, so none of them counts against it.
    expect(placedOn(fan.body)).toEqual({ a: eks.id, b: eks2.id, c: eks.id, merge: eks.id });
    const chain = await submit(ws, [gpuStep("first"), gpuStep("second", ["first"]), gpuStep("third", ["second"])]);
    expect(placedOn(chain.body)).toEqual({ first: eks.id, second: eks.id, third: eks.id });
  });

  it("a node naming its cluster is not second-guessed: it goes there, online or not, GPUs or not", async () => {
    const { ws, lab } = await hybrid();
    await env.DB.prepare("UPDATE clusters SET last_heartbeat_at = ? WHERE id = ?")
      .bind(Date.now() - 60_000, lab.id)
      .run();
    const run = await submit(ws, [{ id: "x", project: { uri: "p" }, cluster: "lab", resources: { gpu: 1 } }]);
    expect(run.status).toBe(201);
    expect(placedOn(run.body)).toEqual({ x: lab.id });
  });

  it("bad selectors stay refused when the DAG is validated, with the field named", async () => {
    const ws = await workspace();
    const bad = async (cluster: unknown, extra: Record<string, unknown> = {}) => {
      const name = unique("bad");
      const r = await call("PUT", `/v1/dags/${name}`, { token: ws.write, body: { name, nodes: [{ id: "x", project: { uri: "p" }, cluster, ...extra }] } });
      expect(r.status, JSON.stringify(r.body)).toBe(422);
      return r.body.error.details as { path: string; message: string }[];
    };
    expect(await bad({})).toEqual([{ path: "nodes[0].cluster", message: "a label selector needs at least one label" }]);
    expect(await bad({ "bad key": "x" })).toEqual([{ path: 'nodes[0].cluster["bad key"]', message: 'invalid name "bad key": label keys look like `gpu` or `example.com/zone`' }]);
    expect(await bad({ gpu: "not ok!" })).toEqual([{ path: "nodes[0].cluster.gpu", message: "label values are at most 63 letters, digits, '-', '_' or '.'" }]);
    expect(await bad({ gpu: true })).toEqual([{ path: "nodes[0].cluster.gpu", message: "expected a string, got true" }]);
    expect(await bad({ gpu: "true" }, { resources: { gpu: 1.5 } })).toEqual([{ path: "nodes[0].resources.gpu", message: "expected an integer ≥ 0" }]);
  });
});
