/** `parallels schedule add|list|pause|resume|rm`. */
import { type Command, Option } from "commander";
import type { ScheduleView } from "../../proto/client";
import { parseParamArgs } from "../../proto/mlproject/cli";
import { collect, type Context, positiveInt } from "../context";
import { CliError } from "../errors";
import { fields, type Format, outputOption, print, table, time } from "../output";

export function registerSchedules(program: Command, ctx: Context): void {
  const schedule = program.command("schedule").description("Runs of a DAG on a cron schedule");

  schedule
    .command("add")
    .description("Create a schedule")
    .argument("<name>", "a DNS label: lowercase letters, digits and '-'")
    .requiredOption("--dag <name>", "the DAG to run")
    .requiredOption("--cron <expression>", 'five fields, e.g. "*/15 * * * *"')
    .option("--timezone <tz>", "IANA time zone the cron expression is read in", "UTC")
    .option("-P, --param <name=value>", "a DAG param of every run (repeatable)", collect, [])
    .option("--version <n>", "always run this version (default: the latest at each run)", positiveInt)
    .addOption(new Option("--overlap <policy>", "when the previous run is still going: skip this one, or queue it").choices(["skip", "queue"]).default("skip"))
    .option("--paused", "create it paused")
    .addOption(outputOption())
    .action(async (name: string, opts: { dag: string; cron: string; timezone: string; param: string[]; version?: number; overlap: "skip" | "queue"; paused?: boolean; output: Format }) => {
      let params: Record<string, string>;
      try {
        params = Object.fromEntries(parseParamArgs(opts.param));
      } catch (e) {
        throw new CliError((e as Error).message);
      }
      const s = await ctx
        .client()
        .schedules.create({ name, dag: opts.dag, cron: opts.cron, timezone: opts.timezone, params, version: opts.version, overlapPolicy: opts.overlap, enabled: !opts.paused });
      print(opts.output, s, () => scheduleFields(s));
    });

  schedule
    .command("list")
    .description("List schedules, by name")
    .option("--limit <n>", "at most this many", positiveInt, 100)
    .addOption(outputOption())
    .action(async (opts: { limit: number; output: Format }) => {
      const items = await ctx
        .client()
        .schedules.list({ limit: Math.min(opts.limit, 200) })
        .toArray(opts.limit);
      print(opts.output, items, () =>
        table(
          ["NAME", "DAG", "CRON", "TIMEZONE", "ENABLED", "NEXT RUN", "LAST RUN"],
          items.map((s) => [s.name, s.dag, s.cron, s.timezone, s.enabled ? "yes" : "paused", time(s.nextRunAt), s.lastRunId]),
        ),
      );
    });

  for (const [verb, description] of [
    ["pause", "Pause a schedule"],
    ["resume", "Resume a schedule (occurrences missed while paused are skipped)"],
  ] as const) {
    schedule
      .command(verb)
      .description(description)
      .argument("<name>")
      .addOption(outputOption())
      .action(async (name: string, opts: { output: Format }) => {
        const s = await ctx.client().schedules[verb](name);
        print(opts.output, s, () => `schedule ${s.name}: ${s.enabled ? `enabled, next run ${time(s.nextRunAt)}` : "paused"}`);
      });
  }

  schedule
    .command("rm")
    .description("Delete a schedule")
    .argument("<name>")
    .addOption(outputOption())
    .action(async (name: string, opts: { output: Format }) => {
      const d = await ctx.client().schedules.delete(name);
      print(opts.output, d, () => `deleted schedule ${d.name}`);
    });
}

const scheduleFields = (s: ScheduleView) =>
  fields([
    ["name", s.name],
    ["dag", s.version ? `${s.dag} v${s.version}` : `${s.dag} (latest)`],
    ["cron", `${s.cron} (${s.timezone})`],
    [
      "params",
      Object.entries(s.params)
        .map(([k, v]) => `${k}=${v}`)
        .join(", "),
    ],
    ["overlap", s.overlapPolicy],
    ["enabled", s.enabled ? "yes" : "paused"],
    ["next run", time(s.nextRunAt)],
  ]);
