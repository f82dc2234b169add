/**
 * Import and export: the document as YAML text, the form the API takes (`PUT /v1/dags/{name}` with
 * `Content-Type: application/yaml`), and back. Reading goes through `proto/dag`'s own parser, so a
 * syntax error is named with its line and column as the API would name it.
 */
import { stringify } from "yaml";
import { parseText } from "../../../proto/dag";
import { asDagDoc, type DagDoc } from "./document";

export const toYaml = (doc: DagDoc): string => stringify(doc, { lineWidth: 0 });

export function fromText(text: string, fileName = "dag.yaml"): { doc: DagDoc } | { error: string } {
  const parsed = parseText(text, fileName.endsWith(".json") ? "json" : "yaml");
  if ("problem" in parsed) return { error: parsed.problem.message };
  if (typeof parsed.value !== "object" || parsed.value === null || Array.isArray(parsed.value)) return { error: "a DAG document is a mapping with a name and nodes" };
  return { doc: asDagDoc(parsed.value) };
}

/** Saves a text as a file the browser downloads. */
export function download(text: string, fileName: string): void {
  const url = URL.createObjectURL(new Blob([text], { type: "application/yaml" }));
  const a = Object.assign(document.createElement("a"), { href: url, download: fileName });
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
