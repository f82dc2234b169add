/** `parallels cluster add|list|get|rm`. */
import { type Command, Option } from "commander";
import type { ClusterCreated, ClusterView } from "../../proto/client";
import { collect, type Context, positiveInt } from "../context";
import { CliError } from "../errors";
import { fields, type Format, labels, outputOption, print, table, time } from "../output";

const KINDS = ["generic", "eks", "ezmeral", "local"];

export function registerClusters(program: Command, ctx: Context): void {
  const cluster = program.command("cluster").description("Clusters whose agents run the steps");

  cluster
    .command("add")
    .description("Register a cluster; prints its agent's bootstrap token and helm install line, once")
    .argument("<name>", "a DNS label: lowercase letters, digits and '-'")
    .addOption(new Option("--kind <kind>", "what runs the steps").choices(KINDS).default("generic"))
    .option("-l, --label <key=value>", "a label node selectors match (repeatable)", collect, [])
    .addOption(outputOption())
    .action(async (name: string, opts: { kind: string; label: string[]; output: Format }) => {
      const created = await ctx.client().clusters.create({ name, kind: opts.kind as ClusterView["kind"], labels: parseLabels(opts.label) });
      print(opts.output, created, () => createdTable(created));
    });

  cluster
    .command("list")
    .description("List clusters, by name")
    .option("--limit <n>", "at most this many", positiveInt, 100)
    .addOption(outputOption())
    .action(async (opts: { limit: number; output: Format }) => {
      const items = await ctx
        .client()
        .clusters.list({ limit: Math.min(opts.limit, 200) })
        .toArray(opts.limit);
      print(opts.output, items, () =>
        table(
          ["NAME", "KIND", "STATUS", "LABELS", "LAST HEARTBEAT"],
          items.map((c) => [c.name, c.kind, c.status, labels(c.labels), time(c.lastHeartbeatAt)]),
        ),
      );
    });

  cluster
    .command("get")
    .description("Show a cluster and its agent")
    .argument("<name>")
    .addOption(outputOption())
    .action(async (name: string, opts: { output: Format }) => {
      const c = await ctx.client().clusters.get(name);
      print(opts.output, c, () => clusterFields(c));
    });

  cluster
    .command("rm")
    .description("Delete a cluster and revoke its agent's credentials (refused while work placed on it is not over)")
    .argument("<name>")
    .addOption(outputOption())
    .action(async (name: string, opts: { output: Format }) => {
      const deleted = await ctx.client().clusters.delete(name);
      print(opts.output, deleted, () => `deleted cluster ${deleted.cluster.name}`);
    });
}

function parseLabels(values: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf("=");
    if (eq <= 0) throw new CliError(`--label ${JSON.stringify(v)}: expected key=value`);
    out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}

const clusterFields = (c: ClusterView) =>
  fields([
    ["name", c.name],
    ["kind", c.kind],
    ["status", c.status],
    ["labels", labels(c.labels)],
    ["registered", time(c.registeredAt)],
    ["last heartbeat", time(c.lastHeartbeatAt)],
    ["agent", c.agent ? `${c.agent.agentVersion}${c.agent.kubernetesVersion ? ` on Kubernetes ${c.agent.kubernetesVersion}` : ""}` : undefined],
    ["created", time(c.createdAt)],
  ]);

const createdTable = (r: ClusterCreated) =>
  [
    clusterFields(r.cluster),
    "",
    `bootstrap token (shown once, expires ${time(r.bootstrap.expiresAt)}):`,
    `  ${r.bootstrap.token}`,
    "install the agent (sh or bash, from the repository's root, MLFLOW_TRACKING_URI set):",
    `  ${r.bootstrap.helmInstall}`,
  ].join("\n");
