import { describe, expect, it } from "vitest";
import { call } from "./harness";

describe("OpenAPI document", () => {
  it("is served without a token and every $ref resolves", async () => {
    const res = await call("GET", "/v1/openapi.json", { token: null });
    expect(res.status).toBe(200);
    const doc = res.body;
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(["/v1/dags", "/v1/dags:validate", "/v1/runs", "/v1/runs/{id}/cancel", "/v1/clusters", "/v1/schedules", "/v1/agent/register", "/v1/agent/events"]));
    expect(doc.paths["/v1/agent/register"].post.security).toEqual([]);
    expect(doc.paths["/v1/dags/{name}"].get.parameters.find((p: any) => p.name === "version").schema.type).toBe("integer");
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThan(10);
    for (const r of refs) expect(doc.components.schemas[r], r).toBeDefined();
    // Generated from the same schema the API validates with: the limits are there.
    const node = JSON.stringify(doc.components.schemas.Dag);
    expect(node).toContain('"maxItems":2000');
    expect(node).toContain("parallelism");
  });
});
