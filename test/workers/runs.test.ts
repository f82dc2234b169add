import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { WorkStartSchema } from "../../proto/messages";
import { call, d1RoundTrips, outboxRows, sampleDag, unique, wideDag, workspace } from "./harness";

async function setup(dag = sampleDag(unique("wc"))) {
  const ws = await workspace();
  const cluster = await call("POST", "/v1/clusters", { token: ws.admin, body: { name: "local", kind: "local" } });
  expect((await call("POST", "/v1/dags", { token: ws.write, body: dag })).status).toBe(201);
  return { ws, dag, clusterId: cluster.body.cluster.id as string };
}

describe("runs: submit", () => {
  it("stores the run and its node runs and writes a start message for each ready node in the same batch", async () => {
    const { ws, dag, clusterId } = await setup();
    const res = await call("POST", "/v1/runs", { token: ws.write, body: { dag: dag.name, params: { lang: "fr" } } });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ dag: dag.name, dagVersion: 1, status: "running", params: { lang: "fr" } });
    expect(res.body.counters).toMatchObject({ nodes: 3, dispatched: 1, pending: 2 });
    const got = await call("GET", `/v1/runs/${res.body.id}`, { token: ws.read });
    expect(got.body.nodes.map((n: any) => [n.nodeId, n.status, n.attempt])).toEqual([
      ["count", "pending", 0],
      ["merge", "pending", 0],
      ["prep", "dispatched", 1],
    ]);
    const rows = await outboxRows(res.body.id);
    expect(rows.map((r) => [r.subject, r.msg_id])).toEqual([[`work.${clusterId}.start`, `${res.body.id}-prep.1.start`]]);
    const message = WorkStartSchema.parse(JSON.parse(rows[0]!.payload));
    expect(message).toMatchObject({ nodeId: "prep", attempt: 1, params: { lang: "fr" }, dag: { name: dag.name, version: 1 }, experiment: dag.name, upstream: [] });
    // The node as it runs: the run's DAG params filled into its parameters and env.
    expect(message.node).toMatchObject({ parameters: { parts: 4, note: "lang=fr" }, env: { LANG_CODE: "fr" } });
  });

  it("is idempotent with an Idempotency-Key: a retried submit returns the same run and dispatches nothing more", async () => {
    const { ws, dag } = await setup();
    const key = unique("key");
    const first = await call("POST", "/v1/runs", { token: ws.write, body: { dag: dag.name }, headers: { "idempotency-key": key } });
    const second = await call("POST", "/v1/runs", { token: ws.write, body: { dag: dag.name }, headers: { "idempotency-key": key } });
    expect(first.status).toBe(201);
    expect(second.status).toBe(200);
    expect(second.body.id).toBe(first.body.id);
    expect((await call("GET", `/v1/runs?dag=${dag.name}`, { token: ws.read })).body.items).toHaveLength(1);
    expect(await outboxRows(first.body.id)).toHaveLength(1);
    const other = await call("POST", "/v1/runs", { token: ws.write, body: { dag: dag.name, params: { lang: "de" } }, headers: { "idempotency-key": key } });
    expect(other.status).toBe(409);
    expect(other.body.error.message).toMatch(/different request/);
    // The same request with its fields in another order is the same request.
    const key2 = unique("key");
    const a = await call("POST", "/v1/runs", {
      token: ws.write,
      raw: JSON.stringify({ dag: dag.name, params: { lang: "fr" } }),
      headers: { "idempotency-key": key2, "content-type": "application/json" },
    });
    const b = await call("POST", "/v1/runs", {
      token: ws.write,
      raw: JSON.stringify({ params: { lang: "fr" }, dag: dag.name }),
      headers: { "idempotency-key": key2, "content-type": "application/json" },
    });
    expect([a.status, b.status, b.body.id]).toEqual([201, 200, a.body.id]);
    // Keys of the schedules' own namespace are refused, so no user can pre-empt a scheduled run.
    const reserved = await call("POST", "/v1/runs", { token: ws.write, body: { dag: dag.name }, headers: { "idempotency-key": "schedule:x:1" } });
    expect(reserved.status).toBe(400);
  });

  it("refuses unknown DAGs (404), undeclared params and unplaceable nodes (422), bad bodies (400), changing nothing", async () => {
    const { ws, dag } = await setup();
    expect((await call("POST", "/v1/runs", { token: ws.write, body: { dag: "nope" } })).status).toBe(404);
    expect((await call("POST", "/v1/runs", { token: ws.write, body: { dag: dag.name, version: 7 } })).status).toBe(404);
    const params = await call("POST", "/v1/runs", { token: ws.write, body: { dag: dag.name, params: { langg: "x" } } });
    expect(params.status).toBe(422);
    expect(params.body.error.details).toEqual([{ path: "params.langg", message: 'the DAG declares no parameter "langg" (declared: lang)' }]);
    const bad = await call("POST", "/v1/runs", { token: ws.write, body: { dag: dag.name, priority: 1, params: { lang: [1] } } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.map((d: any) => d.path).sort()).toEqual(["params.lang", "priority"]);
    const sel = await call("PUT", `/v1/dags/${dag.name}`, { token: ws.write, body: { ...dag, nodes: dag.nodes.map((n, i) => (i === 1 ? { ...n, cluster: { gpu: "true" } } : n)) } });
    expect(sel.status).toBe(200);
    const unplaced = await call("POST", "/v1/runs", { token: ws.write, body: { dag: dag.name } });
    expect(unplaced.status).toBe(422);
    expect(unplaced.body.error.details).toEqual([{ path: "nodes[1].cluster", message: 'no cluster has the labels {"gpu":"true"}' }]);
    expect((await call("GET", "/v1/runs", { token: ws.read })).body.items).toEqual([]);
  });

  it("places nodes by cluster name and by labels", async () => {
    const ws = await workspace();
    const a = await call("POST", "/v1/clusters", { token: ws.admin, body: { name: "cloud", kind: "eks" } });
    const b = await call("POST", "/v1/clusters", { token: ws.admin, body: { name: "onprem", kind: "ezmeral", labels: { gpu: "true" } } });
    // A selector picks among online clusters (test/workers/placement.test.ts): onprem's agent registered and beat just now.
    await env.DB.prepare("UPDATE clusters SET registered_at = ?, last_heartbeat_at = ? WHERE id = ?").bind(Date.now(), Date.now(), b.body.cluster.id).run();
    const name = unique("hybrid");
    await call("POST", "/v1/dags", {
      token: ws.write,
      body: {
        name,
        nodes: [
          { id: "prep", project: { uri: "p" }, cluster: "cloud" },
          { id: "train", project: { uri: "t" }, cluster: { gpu: "true" }, after: ["prep"] },
          { id: "other", project: { uri: "t" }, cluster: { gpu: "true" } },
        ],
      },
    });
    const run = await call("POST", "/v1/runs", { token: ws.write, body: { dag: name } });
    expect(run.status).toBe(201);
    const clusterOf = Object.fromEntries(run.body.nodes.map((n: any) => [n.nodeId, n.clusterId]));
    expect(clusterOf).toEqual({ prep: a.body.cluster.id, train: b.body.cluster.id, other: b.body.cluster.id });
    const subjects = (await outboxRows(run.body.id)).map((r) => r.subject).sort();
    expect(subjects).toEqual([`work.${a.body.cluster.id}.start`, `work.${b.body.cluster.id}.start`].sort());
    // Without a cluster and with two in the workspace, the node cannot be placed.
    const name2 = unique("unplaced");
    await call("POST", "/v1/dags", { token: ws.write, body: { name: name2, nodes: [{ id: "x", project: { uri: "p" } }] } });
    const refused = await call("POST", "/v1/runs", { token: ws.write, body: { dag: name2 } });
    expect(refused.status).toBe(422);
    expect(refused.body.error.details[0].message).toMatch(/workspace has 2 clusters \(cloud, onprem\)/);
  });

  it("uses a constant number of D1 round trips whatever the node count", async () => {
    const trips: number[] = [];
    for (const n of [3, 300, 2000]) {
      const { ws, dag } = await setup(wideDag(unique("wide"), n) as any);
      const res = await call("POST", "/v1/runs", { token: ws.write, body: { dag: dag.name } });
      expect(res.status).toBe(201);
      expect(res.body.counters.nodes).toBe(n);
      expect(res.body.counters.dispatched).toBe(n - 1);
      trips.push(d1RoundTrips(res.headers));
      expect((await outboxRows(res.body.id)).length).toBe(n - 1);
    }
    // Authentication (1) + the read batch (1) + the write batch (1).
    expect(trips).toEqual([3, 3, 3]);
  }, 60_000);
});

describe("runs: list, get, cancel", () => {
  it("lists newest first, filters by DAG and status, and pages with a cursor", async () => {
    const { ws, dag } = await setup();
    const other = unique("other");
    await call("POST", "/v1/dags", { token: ws.write, body: sampleDag(other) });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await call("POST", "/v1/runs", { token: ws.write, body: { dag: dag.name } })).body.id);
    await call("POST", "/v1/runs", { token: ws.write, body: { dag: other } });
    await call("POST", `/v1/runs/${ids[0]}/cancel`, { token: ws.write });
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: any = await call("GET", `/v1/runs?dag=${dag.name}&limit=2${cursor ? `&cursor=${cursor}` : ""}`, { token: ws.read });
      seen.push(...page.body.items.map((r: any) => r.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());
    const cancelling = await call("GET", `/v1/runs?status=cancelling`, { token: ws.read });
    expect(cancelling.body.items.map((r: any) => r.id)).toEqual([ids[0]]);
    expect((await call("GET", "/v1/runs?status=bogus", { token: ws.read })).status).toBe(400);
  });

  it("cancels: pending nodes are cancelled, active ones get a cancel message; a second cancel changes nothing", async () => {
    const { ws, dag, clusterId } = await setup();
    const run = await call("POST", "/v1/runs", { token: ws.write, body: { dag: dag.name } });
    const res = await call("POST", `/v1/runs/${run.body.id}/cancel`, { token: ws.write });
    expect(res.status).toBe(202);
    expect(res.body.status).toBe("cancelling");
    expect(res.body.cancelRequested).toBe(true);
    expect(res.body.counters).toMatchObject({ dispatched: 1, cancelled: 2 });
    const again = await call("POST", `/v1/runs/${run.body.id}/cancel`, { token: ws.write });
    expect(again.body).toMatchObject({ status: "cancelling", counters: { dispatched: 1, cancelled: 2 } });
    const rows = await outboxRows(run.body.id);
    expect(rows.map((r) => [r.subject, r.msg_id])).toEqual([
      [`work.${clusterId}.start`, `${run.body.id}-prep.1.start`],
      [`work.${clusterId}.cancel`, `${run.body.id}-prep.1.cancel`],
    ]);
  });

  it("force-cancels a run whose agent will never confirm: active nodes cancelled at once, cancel message kept once", async () => {
    const { ws, dag, clusterId } = await setup();
    const run = await call("POST", "/v1/runs", { token: ws.write, body: { dag: dag.name } });
    expect((await call("POST", `/v1/runs/${run.body.id}/cancel`, { token: ws.write })).body.status).toBe("cancelling");
    const bad = await call("POST", `/v1/runs/${run.body.id}/cancel?force=yes`, { token: ws.write });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details).toEqual([{ path: "force", message: 'expected "true" or "false"' }]);
    expect((await call("GET", `/v1/runs/${run.body.id}`, { token: ws.read })).body.status).toBe("cancelling");
    expect((await call("POST", `/v1/runs/${run.body.id}/cancel?force=true`, { token: ws.read })).status).toBe(403);

    const forced = await call("POST", `/v1/runs/${run.body.id}/cancel?force=true`, { token: ws.write });
    expect(forced.status).toBe(200);
    expect(forced.body).toMatchObject({ status: "cancelled", counters: { cancelled: 3, dispatched: 0 } });
    expect(forced.body.finishedAt).not.toBeNull();
    expect(forced.body.nodes.find((n: any) => n.nodeId === "prep")).toMatchObject({ status: "cancelled", attempt: 1 });
    expect((await call("GET", `/v1/runs/${run.body.id}`, { token: ws.read })).body).toEqual(forced.body);
    const rows = await outboxRows(run.body.id);
    expect(rows.map((r) => [r.subject, r.msg_id])).toEqual([
      [`work.${clusterId}.start`, `${run.body.id}-prep.1.start`],
      [`work.${clusterId}.cancel`, `${run.body.id}-prep.1.cancel`],
    ]);
    expect((await call("POST", `/v1/runs/${run.body.id}/cancel?force=true`, { token: ws.write })).status).toBe(409);
  });

  it("cancels a run whose nodes are all finished or pending at once, and refuses to cancel a finished run", async () => {
    const { ws, dag } = await setup();
    const run = await call("POST", "/v1/runs", { token: ws.write, body: { dag: dag.name } });
    // As the agent would report, the first node ended; nothing is active now.
    await env.DB.prepare("UPDATE node_runs SET status = 'succeeded' WHERE run_id = ? AND node_id = 'prep'").bind(run.body.id).run();
    const res = await call("POST", `/v1/runs/${run.body.id}/cancel`, { token: ws.write });
    expect(res.body.status).toBe("cancelled");
    expect(res.body.finishedAt).not.toBeNull();
    const refused = await call("POST", `/v1/runs/${run.body.id}/cancel`, { token: ws.write });
    expect(refused.status).toBe(409);
    expect(refused.body.error.message).toBe(`run ${run.body.id} has already been cancelled`);
  });
});
