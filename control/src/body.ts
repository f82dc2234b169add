/**
 * Reading requests at the boundary: parse, validate with the proto/ schemas, or refuse. The route
 * table (routes/define.ts) calls these with the schemas each route declares.
 */
import type { Context } from "hono";
import type { z } from "zod";
import { dagErrorMap, issuesToProblems, parseText } from "../../proto/dag";
import { ApiError } from "./errors";

const YAML_TYPES = ["application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"];

function isYaml(c: Context): boolean {
  const type = (c.req.header("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  return YAML_TYPES.includes(type);
}

const JSON_TYPE = /^application\/([\w.+-]+\+)?json$/;

/** The body as a plain value: JSON (no content type means JSON), or YAML when the type says so. */
export async function readDocument(c: Context, optional = false): Promise<unknown> {
  const type = (c.req.header("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (type !== "" && !JSON_TYPE.test(type) && !YAML_TYPES.includes(type)) {
    throw new ApiError("unsupported_media_type", `cannot read a body of type "${type}": send Content-Type: application/json (or application/yaml for DAG documents)`);
  }
  const text = await c.req.text();
  if (optional && text === "") return {};
  if (text.trim() === "") throw new ApiError("malformed_body", "the request body is empty");
  const parsed = parseText(text, isYaml(c) ? "yaml" : "json");
  if ("problem" in parsed) throw new ApiError("malformed_body", parsed.problem.message);
  return parsed.value;
}

export function validate<S extends z.ZodType>(schema: S, value: unknown, what = "request body"): z.infer<S> {
  const result = schema.safeParse(value, { error: dagErrorMap });
  if (!result.success) throw new ApiError("invalid_request", `invalid ${what}`, issuesToProblems(result.error.issues));
  return result.data;
}
