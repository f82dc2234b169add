import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { call, sampleDag, unique, workspace } from "./harness";

describe("authentication and scopes", () => {
  it("answers 401 without a token, with a malformed header and with an unknown token", async () => {
    const none = await call("GET", "/v1/dags", { token: null });
    expect(none.status).toBe(401);
    expect(none.body.error).toMatchObject({ code: "unauthenticated", message: expect.stringMatching(/missing bearer token/) });
    const malformed = await call("GET", "/v1/dags", { token: null, headers: { authorization: "Basic abc" } });
    expect(malformed.status).toBe(401);
    expect(malformed.body.error.message).toMatch(/malformed Authorization/);
    const unknown = await call("GET", "/v1/dags", { token: "pl_not-a-real-token" });
    expect(unknown.status).toBe(401);
    expect(unknown.body.error.message).toMatch(/unknown or revoked/);
  });

  it("answers 403 naming the scope needed when the token is too weak, and changes nothing", async () => {
    const ws = await workspace();
    const name = unique("weak");
    const dag = await call("POST", "/v1/dags", { token: ws.read, body: sampleDag(name) });
    expect(dag.status).toBe(403);
    expect(dag.body.error.message).toBe("this action needs a token with the `write` scope; yours has `read`");
    expect((await call("GET", `/v1/dags/${name}`, { token: ws.read })).status).toBe(404);
    expect((await call("POST", "/v1/clusters", { token: ws.write, body: { name: "c1", kind: "generic" } })).status).toBe(403);
    expect((await call("POST", "/v1/tokens", { token: ws.write, body: { name: "t", scope: "admin" } })).status).toBe(403);
    expect((await call("POST", "/v1/runs", { token: ws.read, body: { dag: name } })).status).toBe(403);
    expect((await call("GET", "/v1/clusters", { token: ws.read })).body.items).toEqual([]);
  });

  it("only the root secret creates workspaces", async () => {
    const ws = await workspace();
    const res = await call("POST", "/v1/workspaces", { token: ws.admin, body: { name: unique("nope") } });
    expect(res.status).toBe(403);
    const dup = await call("POST", "/v1/workspaces", { body: { name: ws.id } });
    expect(dup.status).toBe(409);
    // The refused duplicate minted no token for the existing workspace.
    const tokens = await call("GET", "/v1/tokens", { token: ws.admin });
    expect(tokens.body.items.map((t: any) => t.name).sort()).toEqual(["admin", "read", "write"]);
  });

  it("keeps each workspace's objects invisible to the others", async () => {
    const a = await workspace();
    const b = await workspace();
    const name = unique("mine");
    expect((await call("POST", "/v1/dags", { token: a.write, body: sampleDag(name) })).status).toBe(201);
    expect((await call("POST", "/v1/clusters", { token: a.admin, body: { name: "gpu", kind: "eks" } })).status).toBe(201);
    expect((await call("GET", `/v1/dags/${name}`, { token: b.admin })).status).toBe(404);
    expect((await call("GET", "/v1/dags", { token: b.admin })).body.items).toEqual([]);
    expect((await call("GET", "/v1/clusters/gpu", { token: b.admin })).status).toBe(404);
    expect((await call("DELETE", `/v1/dags/${name}`, { token: b.admin })).status).toBe(404);
    expect((await call("POST", "/v1/runs", { token: b.admin, body: { dag: name } })).status).toBe(404);
    // b may use the same names without clashing with a.
    expect((await call("POST", "/v1/dags", { token: b.write, body: sampleDag(name) })).status).toBe(201);
    const run = await call("POST", "/v1/runs", { token: a.write, body: { dag: name } });
    expect(run.status).toBe(201);
    expect((await call("GET", `/v1/runs/${run.body.id}`, { token: b.admin })).status).toBe(404);
    expect((await call("POST", `/v1/runs/${run.body.id}/cancel`, { token: b.admin })).status).toBe(404);
  });

  it("stops accepting a revoked token", async () => {
    const ws = await workspace();
    const minted = await call("POST", "/v1/tokens", { token: ws.admin, body: { name: "ci", scope: "read" } });
    expect((await call("GET", "/v1/dags", { token: minted.body.token })).status).toBe(200);
    expect((await call("DELETE", `/v1/tokens/${minted.body.id}`, { token: ws.admin })).status).toBe(200);
    expect((await call("GET", "/v1/dags", { token: minted.body.token })).status).toBe(401);
    // Tokens are stored hashed: the listing never shows the secret.
    const list = await call("GET", "/v1/tokens", { token: ws.admin });
    expect(JSON.stringify(list.body)).not.toContain(minted.body.token);
  });

  it("allows CORS only for configured origins", async () => {
    const pre = await SELF.fetch("https://control.test/v1/runs", {
      method: "OPTIONS",
      headers: { origin: "https://ui.example.test", "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type" },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-origin")).toBe("https://ui.example.test");
    const other = await SELF.fetch("https://control.test/v1/runs", {
      method: "OPTIONS",
      headers: { origin: "https://evil.example.test", "access-control-request-method": "POST" },
    });
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
  });
});
