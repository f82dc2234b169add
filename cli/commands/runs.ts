/** `parallels run start|resume|list|get|cancel|watch|logs`. */
import { type Command, Option } from "commander";
import { isTerminalRun, RUN_STATUSES, type RunView } from "../../proto/client";
import { topologicalOrder } from "../../proto/dag/graph";
import { parseParamArgs } from "../../proto/mlproject/cli";
import { collect, type Context, positiveInt } from "../context";
import { CliError, EXIT } from "../errors";
import { fields, type Format, outputOption, print, table, time } from "../output";
import { byOrder, progressView } from "../progress";

const EXIT_HELP = `
Exit codes with --watch (and of \`run watch\`): 0 the run succeeded, 1 it failed, 3 it was
cancelled, 2 the command itself failed (refused, bad input, no answer), 130 interrupted (Ctrl-C
stops watching; the run goes on).`;

export function registerRuns(program: Command, ctx: Context): void {
  const run = program.command("run").description("Runs of DAGs");

  run
    .command("start")
    .description("Submit a run of a DAG")
    .argument("<dag>", "the DAG's name")
    .option("-P, --param <name=value>", "a DAG param, as `mlflow run -P` takes it (repeatable)", collect, [])
    .option("--version <n>", "run this version of the DAG (default: the latest)", positiveInt)
    .option("--idempotency-key <key>", "a retry with the same key returns the same run (default: a new random key)")
    .option("-w, --watch", "show progress until the run ends and exit with its outcome")
    .option("--interval <ms>", "between polls with --watch", positiveInt, 1000)
    .addOption(outputOption())
    .addHelpText("after", EXIT_HELP)
    .action(async (dag: string, opts: { param: string[]; version?: number; idempotencyKey?: string; watch?: boolean; interval: number; output: Format }) => {
      const params = Object.fromEntries(parseParams(opts.param));
      const submitted = await ctx.client().runs.submit({ dag, version: opts.version, params }, { idempotencyKey: opts.idempotencyKey });
      const { created, ...view } = submitted;
      if (!opts.watch) {
        print(opts.output, view, () => `${created ? "submitted" : "already submitted (same Idempotency-Key)"}: run ${view.id} of ${view.dag} v${view.dagVersion}`);
        return;
      }
      process.stderr.write(`run ${view.id} submitted\n`);
      await watch(ctx, view, opts);
    });

  run
    .command("resume")
    .description("Resume a failed or cancelled run: a new run that reuses the steps that succeeded and runs the others")
    .argument("<id>", "the run to resume")
    .option("-P, --param <name=value>", "change a DAG param (steps whose parameters it changes run again, and those after them; repeatable)", collect, [])
    .option("--idempotency-key <key>", "a retry with the same key returns the same run (default: a new random key)")
    .option("-w, --watch", "show progress until the run ends and exit with its outcome")
    .option("--interval <ms>", "between polls with --watch", positiveInt, 1000)
    .addOption(outputOption())
    .addHelpText("after", EXIT_HELP)
    .action(async (id: string, opts: { param: string[]; idempotencyKey?: string; watch?: boolean; interval: number; output: Format }) => {
      const params = Object.fromEntries(parseParams(opts.param));
      const { created, ...view } = await ctx.client().runs.resume(id, { params }, { idempotencyKey: opts.idempotencyKey });
      const reused = view.nodes?.filter((n) => n.status === "reused").length ?? 0;
      if (!opts.watch) {
        print(opts.output, view, () => `${created ? "resumed" : "already resumed (same Idempotency-Key)"}: run ${view.id} resumes ${id}, reusing ${reused} step${reused === 1 ? "" : "s"}`);
        return;
      }
      process.stderr.write(`run ${view.id} resumes ${id} (${reused} step${reused === 1 ? "" : "s"} reused)\n`);
      await watch(ctx, view, opts);
    });

  run
    .command("watch")
    .description("Show a run's progress until it ends; exit with its outcome")
    .argument("<id>")
    .option("--interval <ms>", "between polls", positiveInt, 1000)
    .addOption(outputOption())
    .addHelpText("after", EXIT_HELP)
    .action(async (id: string, opts: { interval: number; output: Format }) => {
      await watch(ctx, await ctx.client().runs.get(id), opts);
    });

  run
    .command("list")
    .description("List runs, newest first")
    .option("--dag <name>", "only this DAG's runs")
    .addOption(new Option("--status <status>", "only runs with this status").choices(RUN_STATUSES))
    .option("--limit <n>", "at most this many", positiveInt, 50)
    .addOption(outputOption())
    .action(async (opts: { dag?: string; status?: RunView["status"]; limit: number; output: Format }) => {
      const items = await ctx
        .client()
        .runs.list({ dag: opts.dag, status: opts.status, limit: Math.min(opts.limit, 200) })
        .toArray(opts.limit);
      print(opts.output, items, () =>
        table(
          ["ID", "DAG", "VERSION", "STATUS", "CREATED", "FINISHED"],
          items.map((r) => [r.id, r.dag, r.dagVersion, r.status, time(r.createdAt), time(r.finishedAt)]),
        ),
      );
    });

  run
    .command("get")
    .description("Show a run: its steps, their partitions and MLflow runs")
    .argument("<id>")
    .addOption(outputOption())
    .action(async (id: string, opts: { output: Format }) => {
      const r = await ctx.client().runs.get(id);
      print(opts.output, r, () => runTable(r));
    });

  run
    .command("cancel")
    .description("Cancel a run: agents stop its steps (`cancelling` until they report)")
    .argument("<id>")
    .option("--force", "cancelled at once, without waiting for agents (for a run whose cluster is gone)")
    .addOption(outputOption())
    .action(async (id: string, opts: { force?: boolean; output: Format }) => {
      const r = await ctx.client().runs.cancel(id, { force: opts.force });
      print(opts.output, r, () => `run ${r.id}: ${r.status}`);
    });

  run
    .command("logs")
    .description("Say where the logs of a run's steps are in MLflow (there is no logs endpoint yet)")
    .argument("<id>")
    .argument("[node]", "only this step")
    .addOption(outputOption())
    .addHelpText(
      "after",
      `
The API has no logs endpoint yet, so this prints where each step's logs are rather than the logs:
a step's stdout and stderr are artifacts of its MLflow run (the node's mlflowRunId and mlflowUrl):
  ${LOGS.join(" and ")}
A partitioned step's are in each partition's run, nested under the step's run (on Kubernetes,
past the agent's limit of nested runs, in the step's own run under parallels/logs/partition-<i>/).
Read one with the MLflow CLI:
  mlflow artifacts download --run-id <mlflow run id> --artifact-path ${LOGS[0]}`,
    )
    .action(async (id: string, node: string | undefined, opts: { output: Format }) => {
      const r = await ctx.client().runs.get(id);
      const nodes = (r.nodes ?? []).filter((n) => node === undefined || n.nodeId === node);
      if (node !== undefined && nodes.length === 0) throw new CliError(`run ${id} has no step "${node}"; its steps: ${(r.nodes ?? []).map((n) => n.nodeId).join(", ")}`);
      const where = nodes.map((n) => ({
        nodeId: n.nodeId,
        status: n.status,
        mlflowRunId: n.mlflowRunId,
        mlflowUrl: n.mlflowUrl,
        logs: n.mlflowRunId ? LOGS : [],
        partitioned: n.partitions.total > 1,
      }));
      print(opts.output, where, () =>
        [
          table(
            ["NODE", "STATUS", "MLFLOW RUN", "LOGS"],
            where.map((w) => [w.nodeId, w.status, w.mlflowRunId ?? "(not started)", w.mlflowRunId ? (w.partitioned ? `${LOGS[0]} of each partition's nested run` : LOGS[0]) : undefined]),
          ),
          ...where.filter((w) => w.mlflowUrl).map((w) => `${w.nodeId}: ${w.mlflowUrl}`),
          "(no logs endpoint yet: the logs are MLflow artifacts; `parallels run logs --help` says how to read them)",
        ].join("\n"),
      );
    });
}

const LOGS = ["parallels/logs/stdout.log", "parallels/logs/stderr.log"];

/** `-P a=1 -P b=x`: MLflow's own parsing (values stay strings, as `mlflow run` keeps them). */
function parseParams(values: string[]): Map<string, string> {
  try {
    return parseParamArgs(values);
  } catch (e) {
    throw new CliError((e as Error).message);
  }
}

async function watch(ctx: Context, first: RunView, opts: { interval: number; output: Format }): Promise<void> {
  const client = ctx.client();
  // Steps in the DAG's order, not the API's (by id): read the version the run uses.
  const order = await client.dags
    .get(first.dag, { version: first.dagVersion })
    .then((d) => topologicalOrder(d.spec))
    .catch(() => []);
  const view = progressView(process.stderr, order);
  const stop = new AbortController();
  const onSigint = () => stop.abort(new DOMException("interrupted", "AbortError"));
  process.once("SIGINT", onSigint);
  let final: RunView;
  try {
    final = isTerminalRun(first.status) ? first : await client.runs.wait(first.id, { intervalMs: opts.interval, signal: stop.signal, onProgress: (r) => view.update(r) });
  } catch (e) {
    if (!stop.signal.aborted) throw e;
    process.stderr.write(`\nstopped watching; run ${first.id} goes on (\`parallels run cancel ${first.id}\` stops it)\n`);
    process.exitCode = EXIT.interrupted;
    return;
  } finally {
    process.removeListener("SIGINT", onSigint);
  }
  if (final === first) view.update(final);
  print(opts.output, final, () => runTable(final, order));
  process.exitCode = final.status === "succeeded" ? EXIT.ok : final.status === "failed" ? EXIT.runFailed : EXIT.runCancelled;
}

/** `order`: node ids to list the steps by (the DAG's order); otherwise the API's (by id). */
function runTable(r: RunView, order: readonly string[] = []): string {
  const head = fields([
    ["run", r.id],
    ["dag", `${r.dag} v${r.dagVersion}`],
    ["status", r.status],
    ...(r.resumedFrom ? [["resumed from", r.resumedFrom] as [string, string]] : []),
    [
      "params",
      Object.entries(r.params)
        .map(([k, v]) => `${k}=${v}`)
        .join(", "),
    ],
    ["created", time(r.createdAt)],
    ["finished", time(r.finishedAt)],
    ["mlflow run", r.mlflowRunId ?? r.mlflowNote],
    ["mlflow url", r.mlflowUrl],
  ]);
  if (!r.nodes) return head;
  const nodes = table(
    ["NODE", "STATUS", "ATTEMPT", "PARTITIONS", "MLFLOW RUN", "MESSAGE"],
    [...r.nodes]
      .sort(byOrder(order))
      .map((n) => [
        n.nodeId,
        n.status,
        n.attempt,
        `${n.partitions.done}/${n.partitions.total} done, ${n.partitions.failed} failed`,
        n.mlflowRunId,
        n.reusedFrom ? `reused from run ${n.reusedFrom.runId}` : n.cachedFrom ? `cached from run ${n.cachedFrom.runId}` : n.message,
      ]),
  );
  return `${head}\n\n${nodes}`;
}
