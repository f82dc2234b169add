/** `parallels dag apply|validate|list|get|versions`. */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import type { DagView } from "../../proto/client";
import { declaredUpstream } from "../../proto/dag/graph";
import { type Context, positiveInt } from "../context";
import { CliError } from "../errors";
import { fields, type Format, outputOption, print, table, time } from "../output";

/** The DAG file's text as written (YAML or JSON); `-` reads stdin. Sent as it is: the API validates it. */
function readDocument(file: string): string {
  try {
    return readFileSync(file === "-" ? 0 : file, "utf8");
  } catch (e) {
    throw new CliError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`);
  }
}

export function registerDags(program: Command, ctx: Context): void {
  const dag = program.command("dag").description("DAGs of MLflow Projects, with immutable versions");

  dag
    .command("apply")
    .description("Create the DAG or add a version (an unchanged file keeps the latest version)")
    .requiredOption("-f, --file <path>", "the DAG document, YAML or JSON ('-': stdin)")
    .addOption(outputOption())
    .action(async (opts: { file: string; output: Format }) => {
      const applied = await ctx.client().dags.apply(readDocument(opts.file));
      const { created, ...view } = applied;
      print(opts.output, view, () => (created ? `created DAG ${view.name}, version 1` : `DAG ${view.name}: version ${view.version} (an unchanged document keeps its version)`));
    });

  dag
    .command("validate")
    .description("Check a DAG document without storing it; prints every problem with its path")
    .requiredOption("-f, --file <path>", "the DAG document, YAML or JSON ('-': stdin)")
    .addOption(outputOption())
    .action(async (opts: { file: string; output: Format }) => {
      const result = await ctx.client().dags.validate(readDocument(opts.file));
      print(opts.output, result, () => `DAG ${result.dag.name} is valid: ${result.dag.nodes.length} node${result.dag.nodes.length === 1 ? "" : "s"}`);
    });

  dag
    .command("list")
    .description("List DAGs, by name")
    .option("--limit <n>", "at most this many", positiveInt, 100)
    .addOption(outputOption())
    .action(async (opts: { limit: number; output: Format }) => {
      const items = await ctx
        .client()
        .dags.list({ limit: Math.min(opts.limit, 200) })
        .toArray(opts.limit);
      print(opts.output, items, () =>
        table(
          ["NAME", "VERSION", "UPDATED", "DESCRIPTION"],
          items.map((d) => [d.name, d.latestVersion, time(d.updatedAt), d.description]),
        ),
      );
    });

  dag
    .command("get")
    .description("Show a DAG (its latest version, or --version)")
    .argument("<name>")
    .option("--version <n>", "that version", positiveInt)
    .addOption(outputOption())
    .action(async (name: string, opts: { version?: number; output: Format }) => {
      const d = await ctx.client().dags.get(name, { version: opts.version });
      print(opts.output, d, () => dagTable(d));
    });

  dag
    .command("versions")
    .description("List a DAG's versions, newest first")
    .argument("<name>")
    .addOption(outputOption())
    .action(async (name: string, opts: { output: Format }) => {
      const versions = await ctx.client().dags.versions(name);
      print(opts.output, versions, () =>
        table(
          ["VERSION", "CREATED"],
          versions.map((v) => [v.version, time(v.createdAt)]),
        ),
      );
    });
}

function dagTable(d: DagView): string {
  const head = fields([
    ["name", d.name],
    ["version", `${d.version} of ${d.latestVersion}`],
    ["description", d.spec.description],
    [
      "params",
      Object.entries(d.spec.params ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(", "),
    ],
    ["created", time(d.versionCreatedAt)],
  ]);
  const nodes = table(
    ["NODE", "PROJECT", "AFTER", "PARTITION"],
    d.spec.nodes.map((n) => [n.id, n.project.uri, declaredUpstream(n).join(","), n.partition?.by]),
  );
  return `${head}\n\n${nodes}`;
}
