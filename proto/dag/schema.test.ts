import { z } from "zod";
import { describe, expect, it } from "vitest";
import { DagSchema, MAX_DAG_BYTES, MAX_NODES, MAX_PARALLELISM } from "./index";
import { captureGroupCount } from "./schema";

describe("schema", () => {
  it("exports the limits", () => {
    expect([MAX_NODES, MAX_PARALLELISM, MAX_DAG_BYTES]).toEqual([2000, 100_000, 1024 * 1024]);
  });

  it("converts to JSON Schema (for the OpenAPI document), strict at every level", () => {
    const schema = z.toJSONSchema(DagSchema, { io: "input" }) as Record<string, any>;
    expect(schema.additionalProperties).toBe(false);
    expect(schema.required).toEqual(["name", "nodes"]);
    const node = schema.properties.nodes.items;
    expect(node.additionalProperties).toBe(false);
    expect(node.properties.parallelism).toMatchObject({ minimum: 1, maximum: 100_000, default: 1 });
    expect(schema.properties.nodes.maxItems).toBe(2000);
  });

  it("counts capture groups", () => {
    expect(captureGroupCount("abc")).toBe(0);
    expect(captureGroupCount("(a)(?:b)(?<c>c)")).toBe(2);
  });
});
