import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { call, sampleDag, unique, workspace } from "./harness";

async function sha256(text: string) {
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

describe("clusters", () => {
  it("creates a cluster and answers once with a bootstrap token and a helm install line", async () => {
    const ws = await workspace();
    const res = await call("POST", "/v1/clusters", { token: ws.admin, body: { name: "onprem-gpu", kind: "ezmeral", labels: { gpu: "true", "example.com/zone": "lab" } } });
    expect(res.status).toBe(201);
    expect(res.body.cluster).toMatchObject({ name: "onprem-gpu", kind: "ezmeral", labels: { gpu: "true" }, status: "awaiting_agent" });
    const { token, helmInstall, expiresAt } = res.body.bootstrap;
    expect(token).toMatch(/^plb_[A-Za-z0-9_-]{43}$/);
    // charts/parallels-agent, with the token written to a 0600 file by the shell's builtin printf and
    // read by --set-file: it is in no command line (test/node/chart.test.ts runs this line with sh and bash).
    expect(helmInstall).toContain("helm upgrade --install parallels-agent charts/parallels-agent --namespace parallels --create-namespace ");
    expect(helmInstall).toContain(`printf '%s' '${token}' >"$f" && helm upgrade`);
    expect(helmInstall).toContain(`--set-string controlPlane.url='http://127.0.0.1:8787' --set-string cluster.name='onprem-gpu' `);
    expect(helmInstall).toContain('--set-file bootstrap.token="$f")');
    expect(helmInstall.split(token)).toHaveLength(2);
    expect(helmInstall).not.toMatch(/--set(-string)? bootstrap/);
    expect(Date.parse(expiresAt) - Date.now()).toBeGreaterThan(50 * 60_000);
    // Stored hashed, never in clear.
    const row = await env.DB.prepare("SELECT bootstrap_token_hash AS h FROM clusters WHERE id = ?").bind(res.body.cluster.id).first<{ h: string }>();
    expect(row!.h).toBe(await sha256(token));
    expect((await call("GET", "/v1/clusters/onprem-gpu", { token: ws.read })).body).toEqual(res.body.cluster);
    expect(JSON.stringify((await call("GET", "/v1/clusters", { token: ws.read })).body)).not.toContain(token);
  });

  it("re-issues a bootstrap token; the old one is replaced", async () => {
    const ws = await workspace();
    const first = await call("POST", "/v1/clusters", { token: ws.admin, body: { name: "c", kind: "generic" } });
    const again = await call("POST", "/v1/clusters/c/bootstrap", { token: ws.admin });
    expect(again.status).toBe(200);
    expect(again.body.bootstrap.token).not.toBe(first.body.bootstrap.token);
    const row = await env.DB.prepare("SELECT bootstrap_token_hash AS h FROM clusters WHERE id = ?").bind(first.body.cluster.id).first<{ h: string }>();
    expect(row!.h).toBe(await sha256(again.body.bootstrap.token));
  });

  it("refuses bad names, kinds, labels and unknown fields with every problem", async () => {
    const ws = await workspace();
    const res = await call("POST", "/v1/clusters", { token: ws.admin, body: { name: "Bad_Name", kind: "gke", labels: { "bad key!": "x" }, region: "eu" } });
    expect(res.status).toBe(400);
    const paths = res.body.error.details.map((d: any) => d.path).sort();
    expect(paths).toEqual(["kind", 'labels["bad key!"]', "name", "region"]);
    expect(res.body.error.details.find((d: any) => d.path === "region").message).toBe('unknown field "region"');
    expect((await call("GET", "/v1/clusters", { token: ws.read })).body.items).toEqual([]);
  });

  it("refuses a duplicate name with 409", async () => {
    const ws = await workspace();
    expect((await call("POST", "/v1/clusters", { token: ws.admin, body: { name: "c", kind: "eks" } })).status).toBe(201);
    const dup = await call("POST", "/v1/clusters", { token: ws.admin, body: { name: "c", kind: "generic" } });
    expect(dup.status).toBe(409);
    expect((await call("GET", "/v1/clusters/c", { token: ws.read })).body.kind).toBe("eks");
  });

  it("deletes a cluster, keeping its NATS key on the revocation list; refuses while it has active work", async () => {
    const ws = await workspace();
    const created = await call("POST", "/v1/clusters", { token: ws.admin, body: { name: "c", kind: "eks" } });
    const id = created.body.cluster.id;
    // As the agent registration would have done (that endpoint arrives with the agent).
    await env.DB.prepare("UPDATE clusters SET nats_user_public_key = ?, registered_at = ? WHERE id = ?").bind(`U${id.toUpperCase()}`, Date.now(), id).run();
    const dag = unique("d");
    await call("POST", "/v1/dags", { token: ws.write, body: sampleDag(dag) });
    const run = await call("POST", "/v1/runs", { token: ws.write, body: { dag } });
    expect(run.status).toBe(201);
    const busy = await call("DELETE", "/v1/clusters/c", { token: ws.admin });
    expect(busy.status).toBe(409);
    expect(busy.body.error.message).toMatch(/unfinished work/);
    // Its NATS key is not revoked by a refused delete.
    expect(await env.DB.prepare("SELECT 1 FROM nats_revocations WHERE cluster_id = ?").bind(id).first()).toBeNull();
    // Cancel the run, and the agent reports its dispatched node cancelled: now it can go.
    await call("POST", `/v1/runs/${run.body.id}/cancel`, { token: ws.write });
    await env.DB.prepare("UPDATE node_runs SET status = 'cancelled' WHERE run_id = ? AND status = 'dispatched'").bind(run.body.id).run();
    const del = await call("DELETE", "/v1/clusters/c", { token: ws.admin });
    expect(del.status).toBe(200);
    expect((await call("GET", "/v1/clusters/c", { token: ws.read })).status).toBe(404);
    const revoked = await env.DB.prepare("SELECT cluster_id FROM nats_revocations WHERE public_key = ?").bind(`U${id.toUpperCase()}`).first();
    expect(revoked).toEqual({ cluster_id: id });
    // The run stays visible after its cluster is gone.
    expect((await call("GET", `/v1/runs/${run.body.id}`, { token: ws.read })).status).toBe(200);
  });
});
