import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { call, sampleDag, unique, workspace } from "./harness";

describe("DAGs: happy path", () => {
  it("creates from JSON, versions with PUT, gets latest and a given version, lists and deletes", async () => {
    const ws = await workspace();
    const name = unique("wc");
    const created = await call("POST", "/v1/dags", { token: ws.write, body: sampleDag(name) });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name, version: 1, latestVersion: 1 });
    expect(created.body.spec.nodes[0].entryPoint).toBe("main"); // defaults are filled in

    const same = await call("PUT", `/v1/dags/${name}`, { token: ws.write, body: sampleDag(name) });
    expect(same.status).toBe(200);
    expect(same.body.version).toBe(1); // re-applying an unchanged document mints no version

    const v2 = await call("PUT", `/v1/dags/${name}`, { token: ws.write, body: sampleDag(name, { description: "v2" }) });
    expect(v2.status).toBe(200);
    expect(v2.body).toMatchObject({ version: 2, latestVersion: 2 });

    expect((await call("GET", `/v1/dags/${name}`, { token: ws.read })).body.spec.description).toBe("v2");
    const first = await call("GET", `/v1/dags/${name}?version=1`, { token: ws.read });
    expect(first.body).toMatchObject({ version: 1, latestVersion: 2, spec: { description: "word count" } });
    expect((await call("GET", `/v1/dags/${name}?version=9`, { token: ws.read })).status).toBe(404);
    expect((await call("GET", `/v1/dags/${name}/versions`, { token: ws.read })).body.items.map((v: any) => v.version)).toEqual([2, 1]);

    const deleted = await call("DELETE", `/v1/dags/${name}`, { token: ws.write });
    expect(deleted.status).toBe(200);
    expect((await call("GET", `/v1/dags/${name}`, { token: ws.read })).status).toBe(404);
    // The name can be used again after a delete.
    expect((await call("POST", "/v1/dags", { token: ws.write, body: sampleDag(name) })).status).toBe(201);
  });

  it("accepts YAML with the same schema as JSON", async () => {
    const ws = await workspace();
    const name = unique("yaml");
    const res = await call("POST", "/v1/dags", { token: ws.write, raw: stringify(sampleDag(name)), headers: { "content-type": "application/yaml" } });
    expect(res.status).toBe(201);
    const json = await call("POST", "/v1/dags:validate", { token: ws.read, body: sampleDag(name) });
    expect(json.body.dag).toEqual(res.body.spec);
  });

  it("lists with cursor pagination", async () => {
    const ws = await workspace();
    const names = ["a", "b", "c", "d", "e"].map((p) => `${p}-${unique("p")}`);
    for (const n of names) expect((await call("POST", "/v1/dags", { token: ws.write, body: sampleDag(n) })).status).toBe(201);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: any = await call("GET", `/v1/dags?limit=2${cursor ? `&cursor=${cursor}` : ""}`, { token: ws.read });
      expect(page.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.items.map((d: any) => d.name));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual([...names].sort());
  });

  it("validates without storing anything", async () => {
    const ws = await workspace();
    const name = unique("dry");
    const ok = await call("POST", "/v1/dags:validate", { token: ws.read, body: sampleDag(name) });
    expect(ok.status).toBe(200);
    expect(ok.body.valid).toBe(true);
    expect((await call("GET", `/v1/dags/${name}`, { token: ws.read })).status).toBe(404);
  });
});

describe("DAGs: bad input", () => {
  it("refuses malformed JSON and YAML with 400", async () => {
    const ws = await workspace();
    const bad = await call("POST", "/v1/dags", { token: ws.write, raw: '{"name": "x", ', headers: { "content-type": "application/json" } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe("malformed_body");
    expect(bad.body.error.message).toBe("invalid JSON at line 1, column 15: unexpected end of input");
    const yaml = await call("POST", "/v1/dags", { token: ws.write, raw: "name: [unclosed", headers: { "content-type": "text/yaml" } });
    expect(yaml.status).toBe(400);
    expect(yaml.body.error.message).toMatch(/^invalid YAML at line 1/);
    const empty = await call("POST", "/v1/dags", { token: ws.write, raw: "", headers: { "content-type": "application/json" } });
    expect(empty.status).toBe(400);
    const form = await call("POST", "/v1/dags", { token: ws.write, raw: "name=x", headers: { "content-type": "application/x-www-form-urlencoded" } });
    expect(form.status).toBe(415);
    expect(form.body.error.code).toBe("unsupported_media_type");
  });

  it("reports every problem at once with paths: wrong types, unknown fields, unknown nodes, cycles", async () => {
    const ws = await workspace();
    const dag = {
      name: "broken",
      nodes: [
        { id: "a", project: { uri: "x" }, after: ["c"] },
        { id: "b", project: { uri: "x" }, parallelism: "lots", after: ["a"] },
        { id: "c", project: { uri: "x" }, after: ["b"], paralelism: 3 },
        { id: "d", project: { uri: "x" }, inputs: { images: { node: "prep" } } },
      ],
    };
    const res = await call("POST", "/v1/dags", { token: ws.write, body: dag });
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe("invalid_dag");
    const details: { path: string; message: string }[] = res.body.error.details;
    const at = (path: string) =>
      details
        .filter((d) => d.path === path)
        .map((d) => d.message)
        .join(" | ");
    expect(at("nodes[1].parallelism")).toMatch(/integer/);
    expect(at("nodes[2].paralelism")).toBe('unknown field "paralelism" (did you mean "parallelism"?)');
    expect(at("nodes[3].inputs.images")).toBe('unknown node "prep"');
    expect(at("nodes[0]")).toBe("cycle: a → b → c → a");
    // Nothing was stored.
    expect((await call("GET", "/v1/dags/broken", { token: ws.read })).status).toBe(404);
  });

  it("names the cycle's nodes in order and the duplicate ids", async () => {
    const ws = await workspace();
    const res = await call("POST", "/v1/dags:validate", {
      token: ws.read,
      body: {
        name: "cyc",
        nodes: [
          { id: "x", project: { uri: "p" }, inputs: { i: { node: "z" } } },
          { id: "y", project: { uri: "p" }, after: ["x"] },
          { id: "z", project: { uri: "p" }, after: ["y"] },
          { id: "y", project: { uri: "p" } },
        ],
      },
    });
    expect(res.status).toBe(422);
    const messages = res.body.error.details.map((d: any) => `${d.path}: ${d.message}`).join("\n");
    expect(messages).toMatch(/duplicate id "y"/);
    expect(messages).toMatch(/x → y → z → x|y → z → x → y|z → x → y → z/);
  });

  it("refuses a body over 1 MiB with 413 and stores nothing", async () => {
    const ws = await workspace();
    const dag = { ...sampleDag("huge"), description: "x".repeat(1024 * 1024) };
    const res = await call("POST", "/v1/dags", { token: ws.write, body: dag });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe("payload_too_large");
    expect((await call("GET", "/v1/dags/huge", { token: ws.read })).status).toBe(404);
  });

  it("refuses a second DAG with the same name (409) and a PUT whose name differs from the URL (422)", async () => {
    const ws = await workspace();
    const name = unique("dup");
    expect((await call("POST", "/v1/dags", { token: ws.write, body: sampleDag(name) })).status).toBe(201);
    const again = await call("POST", "/v1/dags", { token: ws.write, body: sampleDag(name) });
    expect(again.status).toBe(409);
    const mismatch = await call("PUT", `/v1/dags/${name}`, { token: ws.write, body: sampleDag("other") });
    expect(mismatch.status).toBe(422);
    expect(mismatch.body.error.details[0]).toEqual({ path: "name", message: `the document names "other" but the URL names "${name}"` });
    expect((await call("GET", `/v1/dags/${name}`, { token: ws.read })).body.latestVersion).toBe(1);
  });

  it("refuses unknown query parameters", async () => {
    const ws = await workspace();
    const res = await call("GET", "/v1/dags?limit=0", { token: ws.read });
    expect(res.status).toBe(400);
    expect(res.body.error.details[0].path).toBe("limit");
  });
});
