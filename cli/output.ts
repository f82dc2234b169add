/**
 * `--output json|yaml|table` of every command that prints something. JSON and YAML print the API's
 * answer as it is (for scripts); the table is for people and shows the fields that matter.
 */
import { Option } from "commander";
import { stringify } from "yaml";

export const FORMATS = ["table", "json", "yaml"] as const;
export type Format = (typeof FORMATS)[number];

export const outputOption = () => new Option("-o, --output <format>", "how to print the answer").choices(FORMATS).default("table");

type Cell = string | number | boolean | null | undefined;

/** Prints `value` as JSON or YAML, or the table `render` makes of it. */
export function print(format: Format, value: unknown, render: () => string): void {
  const text = format === "json" ? JSON.stringify(value, null, 2) : format === "yaml" ? stringify(value) : render();
  process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
}

const cell = (v: Cell): string => (v === null || v === undefined || v === "" ? "-" : String(v));

/** Columns padded to their widest cell; the last column is not padded. */
export function table(headers: string[], rows: Cell[][]): string {
  const all = [headers, ...rows.map((r) => r.map(cell))];
  const widths = headers.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : (c ?? "").padEnd(widths[i]!))).join("  ")).join("\n");
}

/** `name: value` lines, names aligned. */
export function fields(pairs: [string, Cell][]): string {
  const width = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${`${k}:`.padEnd(width + 1)} ${cell(v)}`).join("\n");
}

/** `2026-11-26T10:00:01.123Z` → `2026-11-26 10:00:01Z`: readable, still unambiguous. */
export const time = (iso: string | null | undefined): string | undefined => iso?.replace("T", " ").replace(/\.\d+Z$/, "Z");

export const labels = (l: Record<string, string | number | boolean>): string =>
  Object.entries(l)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
