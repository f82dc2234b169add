import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ROUTES } from "../../control/src/routes";
import { errorsOf } from "../../control/src/routes/define";
import { STATUS_OF } from "../../proto/errors";
import { call, sampleDag, unique, workspace } from "./harness";

const document = async () => (await call("GET", "/v1/openapi.json", { token: null })).body;

describe("OpenAPI document", () => {
  it("is served without a token and every $ref resolves", async () => {
    const res = await call("GET", "/v1/openapi.json", { token: null });
    expect(res.status).toBe(200);
    const doc = res.body;
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(["/v1/dags", "/v1/dags:validate", "/v1/runs", "/v1/runs/{id}/cancel", "/v1/clusters", "/v1/schedules", "/v1/agent/register", "/v1/agent/events"]),
    );
    expect(doc.paths["/v1/agent/register"].post.security).toEqual([]);
    expect(doc.paths["/v1/agent/events"].post.security).toEqual([{ agentCredential: [] }]);
    expect(doc.paths["/v1/dags/{name}"].get.parameters.find((p: any) => p.name === "version").schema.type).toBe("integer");
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThan(10);
    for (const r of refs) expect(doc.components.schemas[r], r).toBeDefined();
    // Generated from the same schema the API validates with: the limits are there.
    const node = JSON.stringify(doc.components.schemas.Dag);
    expect(node).toContain('"maxItems":2000');
    expect(node).toContain("parallelism");
  });

  it("has every route of the table, with every status it answers", async () => {
    const doc = await document();
    expect(Object.values(doc.paths).reduce((n: number, methods: any) => n + Object.keys(methods).length, 0)).toBe(ROUTES.length);
    for (const { def } of ROUTES) {
      const op = doc.paths[def.path][def.method];
      const statuses = [...Object.keys(def.ok).map(Number), ...errorsOf(def).map((c) => STATUS_OF[c])];
      expect(Object.keys(op.responses).map(Number).sort(), `${def.method} ${def.path}`).toEqual([...new Set(statuses)].sort());
    }
  });

  it("says what the API answers: a created token's secret, PUT's 201, the lists' bounds, the DAGs' 422", async () => {
    const doc = await document();
    const schemas = doc.components.schemas;
    const created = doc.paths["/v1/tokens"].post.responses["201"].content["application/json"].schema.$ref.split("/").pop();
    expect(schemas[created].required).toContain("token");
    expect(Object.keys(doc.paths["/v1/dags/{name}"].put.responses)).toEqual(expect.arrayContaining(["200", "201", "422"]));
    for (const path of ["/v1/tokens", "/v1/clusters", "/v1/dags", "/v1/runs", "/v1/schedules"]) {
      const limit = doc.paths[path].get.parameters.find((p: any) => p.name === "limit");
      expect(limit, path).toMatchObject({ in: "query", required: false, schema: { type: "integer", minimum: 1, maximum: 200, default: 50 } });
    }
    for (const [path, method] of [
      ["/v1/dags", "post"],
      ["/v1/dags/{name}", "put"],
      ["/v1/dags:validate", "post"],
      ["/v1/runs", "post"],
      ["/v1/schedules", "post"],
    ]) {
      expect(doc.paths[path!][method!].responses["422"], `${method} ${path}`).toBeDefined();
    }
    // DAGs are read as YAML too, as every body is.
    expect(Object.keys(doc.paths["/v1/dags"].post.requestBody.content)).toEqual(["application/json", "application/yaml"]);
    const key = doc.paths["/v1/runs"].post.parameters.find((p: any) => p.name === "Idempotency-Key");
    expect(key).toMatchObject({ in: "header", required: false, schema: { type: "string" } });
    expect(new RegExp(key.schema.pattern).test("schedule:x:1")).toBe(false);
    expect(new RegExp(key.schema.pattern).test("nightly-2026-11-26")).toBe(true);
  });

  it("answers what the document says for a created token, a PUT that creates, and limit=0", async () => {
    const ws = await workspace();
    // The harness holds each of these answers to the document as well.
    const token = await call("POST", "/v1/tokens", { token: ws.admin, body: { name: "ci", scope: "read" } });
    expect(token.status).toBe(201);
    expect(token.body.token).toMatch(/^pl/);
    const name = unique("put");
    expect((await call("PUT", `/v1/dags/${name}`, { token: ws.write, body: sampleDag(name) })).status).toBe(201);
    expect((await call("PUT", `/v1/dags/${name}`, { token: ws.write, body: sampleDag(name) })).status).toBe(200);
    const zero = await call("GET", "/v1/dags?limit=0", { token: ws.read });
    expect(zero.status).toBe(400);
    expect(zero.body.error.details).toEqual([{ path: "limit", message: "expected a number ≥ 1" }]);
  });
});

describe("methods and paths", () => {
  it("answers 405 with Allow for a known path asked with a method it does not have, before authentication", async () => {
    const patch = await call("PATCH", "/v1/tokens", { token: null });
    expect(patch.status).toBe(405);
    expect(patch.headers.get("allow")).toBe("POST, GET, HEAD, OPTIONS");
    expect(patch.body).toEqual({ error: { code: "method_not_allowed", message: "/v1/tokens does not answer PATCH; it answers POST, GET, HEAD, OPTIONS", details: [] } });
    const put = await call("PUT", "/v1/runs/01abc/cancel", { body: {} });
    expect([put.status, put.headers.get("allow")]).toEqual([405, "POST, OPTIONS"]);
    // HEAD where there is no GET.
    expect((await SELF.fetch("https://control.test/v1/dags:validate", { method: "HEAD" })).status).toBe(405);
    expect((await call("POST", "/healthz")).headers.get("allow")).toBe("GET, HEAD, OPTIONS");
    expect((await call("DELETE", "/v1/openapi.json")).status).toBe(405);
  });

  it("answers 404 for unknown paths, and HEAD wherever GET is", async () => {
    const unknown = await call("GET", "/v1/nope");
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe("not_found");
    expect((await call("GET", "/v1/dags/a/b/c")).status).toBe(404);
    expect((await call("GET", "/v1/dags/")).status).toBe(404);
    const head = await SELF.fetch("https://control.test/v1/openapi.json", { method: "HEAD" });
    expect([head.status, await head.text()]).toEqual([200, ""]);
  });
});
