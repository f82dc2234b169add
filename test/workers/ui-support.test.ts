/**
 * What the web UI reads beyond the resources themselves: who its token is (`GET /v1/whoami`, the
 * workspace shown after sign-in), and run views answered with an ETag, so that its poller gets a
 * bodiless 304 while nothing changed. Also: the UI itself is not answered by the Worker (it is
 * static assets), and the API's paths stay the Worker's.
 */
import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { call, ROOT_TOKEN, sampleDag, unique, workspace } from "./harness";

describe("whoami", () => {
  it("names the token's workspace and scope; the admin secret is the root of `default`", async () => {
    const ws = await workspace();
    expect((await call("GET", "/v1/whoami", { token: ws.read })).body).toEqual({ workspace: ws.id, scope: "read", root: false });
    expect((await call("GET", "/v1/whoami", { token: ws.admin })).body).toEqual({ workspace: ws.id, scope: "admin", root: false });
    expect((await call("GET", "/v1/whoami", { token: ROOT_TOKEN })).body).toEqual({ workspace: "default", scope: "admin", root: true });
    const anonymous = await call("GET", "/v1/whoami", { token: null });
    expect(anonymous.status).toBe(401);
    expect((await call("GET", "/v1/whoami", { token: "pl_not-a-token" })).status).toBe(401);
  });
});

describe("run views with an ETag", () => {
  it("answer 304 without a body while the run is unchanged, and the new view once it changes", async () => {
    const ws = await workspace();
    await call("POST", "/v1/clusters", { token: ws.admin, body: { name: "local", kind: "local" } });
    const dag = sampleDag(unique("wc"));
    expect((await call("POST", "/v1/dags", { token: ws.write, body: dag })).status).toBe(201);
    const run = (await call("POST", "/v1/runs", { token: ws.write, body: { dag: dag.name } })).body;

    const get = (path: string, etag?: string) => SELF.fetch(`https://control.test${path}`, { headers: { authorization: `Bearer ${ws.read}`, ...(etag ? { "if-none-match": etag } : {}) } });
    for (const path of [`/v1/runs/${run.id}`, `/v1/runs/${run.id}/nodes/prep`]) {
      const first = await get(path);
      const tag = first.headers.get("etag");
      expect(first.status).toBe(200);
      expect(tag).toMatch(/^"[0-9a-f]{40}"$/);
      const again = await get(path, tag!);
      expect(again.status).toBe(304);
      expect(await again.text()).toBe("");
      expect(again.headers.get("etag")).toBe(tag);
      // A tag that does not match gets the whole answer.
      expect((await get(path, '"0000"')).status).toBe(200);
    }

    const before = (await get(`/v1/runs/${run.id}`)).headers.get("etag")!;
    expect((await call("POST", `/v1/runs/${run.id}/cancel`, { token: ws.write })).status).toBe(202);
    const after = await get(`/v1/runs/${run.id}`, before);
    expect(after.status).toBe(200);
    expect(((await after.json()) as { status: string }).status).toMatch(/^cancel/);
    expect(after.headers.get("etag")).not.toBe(before);
  });
});

describe("the web UI's static assets beside the API", () => {
  it("leaves the API's answers to the Worker: unknown paths under /v1 are the API's 404", async () => {
    const res = await SELF.fetch("https://control.test/v1/no-such-thing", { headers: { authorization: `Bearer ${ROOT_TOKEN}` } });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("not_found");
    expect((await SELF.fetch("https://control.test/healthz")).status).toBe(200);
  });
});
