import { describe, expect, it } from "vitest";
import { call, sampleDag, unique, workspace } from "./harness";

/** Every page of a list, following `nextCursor` with `limit`. */
async function pages(path: string, token: string, limit: number) {
  const out: string[][] = [];
  let cursor: string | null = null;
  do {
    const res: { status: number; body: any } = await call("GET", `${path}?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`, { token });
    expect(res.status).toBe(200);
    out.push(res.body.items.map((i: any) => i.name));
    cursor = res.body.nextCursor;
  } while (cursor && out.length < 10);
  return out;
}

describe("lists page with limit and cursor", () => {
  it("clusters, schedules and tokens: every item once, in order; bad paging parameters are refused", async () => {
    const ws = await workspace();
    for (const name of ["c", "a", "b"]) expect((await call("POST", "/v1/clusters", { token: ws.admin, body: { name, kind: "generic" } })).status).toBe(201);
    const dag = unique("d");
    expect((await call("POST", "/v1/dags", { token: ws.write, body: sampleDag(dag) })).status).toBe(201);
    for (const name of ["s3", "s1", "s2"]) expect((await call("POST", "/v1/schedules", { token: ws.write, body: { name, dag, cron: "0 * * * *", enabled: false } })).status).toBe(201);

    expect(await pages("/v1/clusters", ws.read, 2)).toEqual([["a", "b"], ["c"]]);
    expect(await pages("/v1/schedules", ws.read, 2)).toEqual([["s1", "s2"], ["s3"]]);
    expect(await pages("/v1/clusters", ws.read, 3)).toEqual([["a", "b", "c"]]);
    // Tokens page by id.
    const tokens = await pages("/v1/tokens", ws.admin, 1);
    expect(tokens.flat().sort()).toEqual(["admin", "read", "write"]);
    expect(tokens.every((p) => p.length === 1)).toBe(true);

    for (const path of ["/v1/clusters", "/v1/schedules"]) {
      const bad = await call("GET", `${path}?limit=0`, { token: ws.read });
      expect(bad.status).toBe(400);
      expect(bad.body.error.details[0].path).toBe("limit");
      expect((await call("GET", `${path}?page=2`, { token: ws.read })).status).toBe(400);
    }
  });
});
