/**
 * The `parallels` CLI as a user runs it: the package's `bin` (built by cli/build.ts) as its own
 * process, on the machine's Node (20 here: the oldest the package supports), against the real
 * control plane under `wrangler dev` with NATS, `mlflow server` and a local agent. Every command
 * on success and on bad input; `run start --watch` exits with the run's outcome; `login` stores a
 * 0600 file that PARALLELS_URL / PARALLELS_TOKEN override.
 */
import { spawn } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { buildCli } from "../../cli/build";
import { startAgent, type AgentProcess } from "../../scripts/local/agent";
import { freePort, ROOT } from "../../scripts/local/control-plane";
import { startEmbedded, type Embedded } from "../../scripts/local/embedded";

const TOKEN = "cli-test-admin-token";
const BIN = join(ROOT, (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { bin: { parallels: string } }).bin.parallels);
/** The machine's Node when there is one (20 here), else the one running the tests. */
const NODE = existsSync("/usr/bin/node") ? "/usr/bin/node" : process.execPath;

let state: string;
let env: Embedded;
let agent: AgentProcess;
/** DAG files written for the tests. */
const files = { wordcount: join(ROOT, "examples/wordcount/dag.yaml"), invalid: "", malformed: "", fails: "", slow: "" };

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `parallels args…` with a clean environment: HOME and XDG_CONFIG_HOME in the test's folder,
 * and — unless `login` is what is tested — PARALLELS_URL and PARALLELS_TOKEN of the control plane.
 */
function cli(args: string[], opts: { env?: Record<string, string | undefined>; input?: string; loggedIn?: boolean } = {}): Promise<Result> {
  const base: Record<string, string | undefined> = { PATH: process.env.PATH, HOME: join(state, "home"), XDG_CONFIG_HOME: join(state, "xdg") };
  if (opts.loggedIn !== false) Object.assign(base, { PARALLELS_URL: env.control.url, PARALLELS_TOKEN: TOKEN });
  const childEnv = Object.fromEntries(Object.entries({ ...base, ...opts.env }).filter(([, v]) => v !== undefined)) as Record<string, string>;
  const child = spawn(NODE, [BIN, ...args], { env: childEnv, stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => (stdout += c));
  child.stderr.on("data", (c: Buffer) => (stderr += c));
  child.stdin.end(opts.input ?? "");
  return new Promise((resolve) => child.once("close", (code) => resolve({ code, stdout, stderr })));
}

/** Succeeded, and its stdout is JSON. */
async function json(args: string[]): Promise<any> {
  const r = await cli([...args, "-o", "json"]);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout);
}

/** Failed with exit code 2 and these lines on stderr. */
async function fails(args: string[], ...expected: (string | RegExp)[]): Promise<Result> {
  const r = await cli(args);
  for (const e of expected) expect(r.stderr).toMatch(e);
  expect(r.code).toBe(2);
  return r;
}

beforeAll(async () => {
  state = mkdtempSync(join(tmpdir(), "parallels-cli-"));
  const projects = join(state, "projects");
  cpSync(join(ROOT, "examples/wordcount"), projects, { recursive: true });
  const step = join(projects, "_step-fixture");
  cpSync(join(ROOT, "test/fixtures/projects/step"), step, { recursive: true });
  const write = (name: string, text: string) => {
    const file = join(state, name);
    writeFileSync(file, text);
    return file;
  };
  // Two problems at once: a name that is no DNS label, an input from a node that does not exist.
  files.invalid = write("invalid.yaml", "name: Bad_Name\nnodes:\n  - id: a\n    project: {uri: ./a}\n    inputs: {p: {node: missing}}\n");
  files.malformed = write("malformed.yaml", "name: x\nnodes: [\n");
  files.fails = write("fails.yaml", `name: cli-fails\nnodes:\n  - id: broken\n    project: {uri: ${step}}\n    parameters: {exit_code: 3}\n`);
  files.slow = write("slow.yaml", `name: cli-slow\nnodes:\n  - id: long\n    project: {uri: ${step}}\n    parameters: {seconds: 120}\n`);

  const [, started] = await Promise.all([buildCli(), startEmbedded({ stateDir: state, adminToken: TOKEN, ports: "free" })]);
  env = started;
  const cluster = (await fetch(`${env.control.url}/v1/clusters`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "local", kind: "local" }),
  }).then((r) => r.json())) as any;
  agent = await startAgent({
    controlPlaneUrl: env.control.url,
    mlflowUrl: env.mlflow.url,
    stateDir: join(state, "agent"),
    projectsRoot: projects,
    pythonBinDir: env.mlflow.binDir,
    bootstrapToken: cluster.bootstrap.token,
  });
  for (let i = 0; ; i++) {
    const c = (await fetch(`${env.control.url}/v1/clusters/local`, { headers: { authorization: `Bearer ${TOKEN}` } }).then((r) => r.json())) as any;
    if (c.status === "online") break;
    if (i > 240) throw new Error(`the agent did not come online (log: ${agent.logFile})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}, 600_000);

afterAll(async () => {
  await agent?.stop();
  await env?.stop();
  if (state) rmSync(state, { recursive: true, force: true });
});

describe("parallels login", { timeout: 60_000 }, () => {
  it("checks the token, stores URL and token in a 0600 file; the environment overrides it", async () => {
    const xdg = join(state, "login-xdg");
    const r = await cli(["login", "--url", env.control.url], { loggedIn: false, env: { XDG_CONFIG_HOME: xdg }, input: `${TOKEN}\n` });
    expect(r.code).toBe(0);
    const file = join(xdg, "mlflow-parallels", "credentials.json");
    expect(r.stderr).toContain(`logged in to ${env.control.url}; stored in ${file}`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(xdg, "mlflow-parallels")).mode & 0o777).toBe(0o700);
    expect(JSON.parse(readFileSync(file, "utf8"))).toEqual({ url: env.control.url, token: TOKEN });

    // Logged in by the file alone.
    const listed = await cli(["dag", "list", "-o", "json"], { loggedIn: false, env: { XDG_CONFIG_HOME: xdg } });
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout)).toBeInstanceOf(Array);
    // PARALLELS_TOKEN wins over the file: a wrong one is refused (401).
    const wrongToken = await cli(["dag", "list"], { loggedIn: false, env: { XDG_CONFIG_HOME: xdg, PARALLELS_TOKEN: "wrong" } });
    expect(wrongToken.code).toBe(2);
    expect(wrongToken.stderr).toContain("error: unknown or revoked token (unauthenticated, HTTP 401)");
    // PARALLELS_URL wins too: nothing listens there.
    const closed = await freePort();
    const wrongUrl = await cli(["dag", "list"], { loggedIn: false, env: { XDG_CONFIG_HOME: xdg, PARALLELS_URL: `http://127.0.0.1:${closed}` } });
    expect(wrongUrl.code).toBe(2);
    expect(wrongUrl.stderr).toMatch(new RegExp(`GET http://127.0.0.1:${closed}/v1/dags got no answer: .*\\(network_error\\)`));
  });

  it("without XDG_CONFIG_HOME, stores under ~/.config", async () => {
    const home = join(state, "login-home");
    const r = await cli(["login", "--url", env.control.url, "--token-stdin"], { loggedIn: false, env: { HOME: home, XDG_CONFIG_HOME: undefined }, input: TOKEN });
    expect(r.code).toBe(0);
    expect(statSync(join(home, ".config/mlflow-parallels/credentials.json")).mode & 0o777).toBe(0o600);
  });

  it("refuses a wrong token (401) and stores nothing; needs --url when the token is piped; says when nobody logged in", async () => {
    const xdg = join(state, "refused-xdg");
    const r = await cli(["login", "--url", env.control.url], { loggedIn: false, env: { XDG_CONFIG_HOME: xdg }, input: "not-a-token" });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("error: unknown or revoked token (unauthenticated, HTTP 401)");
    expect(existsSync(join(xdg, "mlflow-parallels", "credentials.json"))).toBe(false);

    const noUrl = await cli(["login"], { loggedIn: false, env: { XDG_CONFIG_HOME: xdg }, input: TOKEN });
    expect(noUrl.code).toBe(2);
    expect(noUrl.stderr).toContain("error: --url is needed when the token comes from stdin");

    const nobody = await cli(["run", "list"], { loggedIn: false, env: { XDG_CONFIG_HOME: xdg } });
    expect(nobody.code).toBe(2);
    expect(nobody.stderr).toContain("error: not logged in: run `parallels login`, or set PARALLELS_URL and PARALLELS_TOKEN");
  });
});

describe("--help", () => {
  const commands = ["", "login", "cluster", "cluster add", "cluster list", "cluster get", "cluster rm", "dag", "dag apply", "dag validate", "dag list", "dag get", "dag versions"];
  commands.push(
    "run",
    "run start",
    "run resume",
    "run watch",
    "run list",
    "run get",
    "run cancel",
    "run logs",
    "schedule",
    "schedule add",
    "schedule list",
    "schedule pause",
    "schedule resume",
    "schedule rm",
  );

  it("answers on every command, with its usage", { timeout: 120_000 }, async () => {
    for (const command of commands) {
      const r = await cli([...command.split(" ").filter(Boolean), "--help"]);
      expect(r.code, command).toBe(0);
      expect(r.stdout, command).toContain(`Usage: parallels${command ? ` ${command}` : ""} `);
    }
  });

  it("says what the exit codes of --watch are, and that run logs has no endpoint yet", async () => {
    expect((await cli(["run", "start", "--help"])).stdout).toMatch(/0 the run succeeded, 1 it failed, 3 it was\s+cancelled/);
    const logs = (await cli(["run", "logs", "--help"])).stdout;
    expect(logs).toContain("The API has no logs endpoint yet");
    expect(logs).toContain("parallels/logs/stdout.log");
  });

  it("refuses unknown commands and options with the usage, exit code 2", async () => {
    await fails(["dag", "frobnicate"], "error: unknown command 'frobnicate'");
    await fails(["dag", "list", "-o", "xml"], "argument 'xml' is invalid. Allowed choices are table, json, yaml");
    await fails(["run", "list", "--status", "bogus"], "argument 'bogus' is invalid");
    await fails(["cluster", "list", "--limit", "0"], "expected a whole number of at least 1");
    await fails(["schedule", "list", "--limit", "x"], "expected a whole number of at least 1");
  });
});

describe("parallels dag", { timeout: 60_000 }, () => {
  it("apply: creates, then an unchanged file keeps its version; JSON and YAML output", async () => {
    const created = await cli(["dag", "apply", "-f", files.wordcount]);
    expect(created).toMatchObject({ code: 0, stdout: "created DAG wordcount, version 1\n" });
    expect(await json(["dag", "apply", "-f", files.wordcount])).toMatchObject({ name: "wordcount", version: 1, latestVersion: 1 });
    const yaml = await cli(["dag", "apply", "-f", "-", "-o", "yaml"], { input: readFileSync(files.wordcount, "utf8") });
    expect(parseYaml(yaml.stdout)).toMatchObject({ name: "wordcount", version: 1 });
  });

  it("validate and apply print every problem of an invalid DAG with its path", async () => {
    for (const verb of ["validate", "apply"]) {
      const r = await fails(["dag", verb, "-f", files.invalid], "error: the DAG has 2 problems (invalid_dag, HTTP 422)");
      expect(r.stderr).toMatch(/^ {2}name: .*DNS-1123 label/m);
      expect(r.stderr).toMatch(/^ {2}nodes\[0\]\.inputs\.p: unknown node "missing"$/m);
      expect(r.stdout).toBe("");
    }
    await fails(["dag", "validate", "-f", files.malformed], /error: invalid YAML at line 3, column 1: .* \(malformed_body, HTTP 400\)/);
    await fails(["dag", "validate", "-f", join(state, "nope.yaml")], `error: cannot read ${join(state, "nope.yaml")}: no such file`);
    await fails(["dag", "apply"], "error: required option '-f, --file <path>' not specified");
    const valid = await cli(["dag", "validate", "-f", files.wordcount]);
    expect(valid).toMatchObject({ code: 0, stdout: "DAG wordcount is valid: 3 nodes\n" });
  });

  it("list, get, versions; unknown DAGs and versions are 404", async () => {
    expect((await json(["dag", "list"])).map((d: any) => d.name)).toContain("wordcount");
    const table = await cli(["dag", "list"]);
    expect(table.stdout).toMatch(/^NAME\s+VERSION\s+UPDATED\s+DESCRIPTION\n(.*\n)*wordcount\s+1\s/m);
    const got = await json(["dag", "get", "wordcount"]);
    expect(got.spec.nodes.map((n: any) => n.id)).toEqual(["split", "count", "merge"]);
    expect((await cli(["dag", "get", "wordcount"])).stdout).toMatch(/^count\s+\.\/count\s+split\s+object$/m);
    expect(await json(["dag", "get", "wordcount", "--version", "1"])).toMatchObject({ version: 1 });
    expect(await json(["dag", "versions", "wordcount"])).toEqual([{ version: 1, createdAt: expect.any(String) }]);
    await fails(["dag", "get", "wordcount", "--version", "2"], 'error: version 2 of DAG "wordcount" (latest is 1) not found (not_found, HTTP 404)');
    await fails(["dag", "get", "nope"], 'error: DAG "nope" not found (not_found, HTTP 404)');
    await fails(["dag", "versions", "nope"], 'error: DAG "nope" not found (not_found, HTTP 404)');
  });
});

describe("parallels cluster", { timeout: 60_000 }, () => {
  it("add prints the bootstrap token and helm line once; list, get, rm", async () => {
    const added = await cli(["cluster", "add", "gpu-lab", "--kind", "generic", "-l", "gpu=true", "-l", "zone=lab"]);
    expect(added.code).toBe(0);
    expect(added.stdout).toMatch(/^bootstrap token \(shown once, expires .*\):\n {2}plb_\S+$/m);
    expect(added.stdout).toContain("helm upgrade --install parallels-agent charts/parallels-agent");
    expect(added.stdout).toMatch(/^labels:\s+gpu=true,zone=lab$/m);

    expect((await json(["cluster", "list"])).map((c: any) => [c.name, c.status])).toEqual([
      ["gpu-lab", "awaiting_agent"],
      ["local", "online"],
    ]);
    expect(await json(["cluster", "get", "gpu-lab"])).toMatchObject({ name: "gpu-lab", kind: "generic", labels: { gpu: "true", zone: "lab" } });
    expect((await cli(["cluster", "get", "local"])).stdout).toMatch(/^status:\s+online$/m);
    expect(await cli(["cluster", "rm", "gpu-lab"])).toMatchObject({ code: 0, stdout: "deleted cluster gpu-lab\n" });
    await fails(["cluster", "get", "gpu-lab"], 'error: cluster "gpu-lab" not found (not_found, HTTP 404)');
    await fails(["cluster", "rm", "gpu-lab"], "(not_found, HTTP 404)");
  });

  it("refuses a taken name, a name that is no DNS label and a label without =", async () => {
    await fails(["cluster", "add", "local", "--kind", "local"], 'error: a cluster named "local" already exists (conflict, HTTP 409)', /^ {2}name: already taken$/m);
    await fails(["cluster", "add", "Bad_Name"], "(invalid_request, HTTP 400)", /^ {2}name: name must be a DNS-1123 label/m);
    await fails(["cluster", "add", "x", "-l", "gpu"], 'error: --label "gpu": expected key=value');
    await fails(["cluster", "add", "x", "--kind", "k3s"], "argument 'k3s' is invalid");
  });
});

describe("parallels run", { timeout: 120_000 }, () => {
  it("start --watch shows the steps' progress and exits 0 when the run succeeds", async () => {
    const r = await cli(["run", "start", "wordcount", "-P", "top=3", "--watch", "--interval", "300"]);
    expect(r.stderr).toMatch(/^run \S+ submitted$/m);
    // Not a terminal: a line whenever a step changes, with its partition counts.
    // (With fewer CPUs than its parallelism, the agent says it capped it: "— parallelism 4 capped to 2: …".)
    expect(r.stderr).toMatch(/^ {2}count: succeeded 4\/4( — parallelism 4 capped to \d: .*)?$/m);
    expect(r.stdout).toMatch(/^status:\s+succeeded$/m);
    expect(r.stdout).toMatch(/^params:\s+top=3$/m);
    expect(r.stdout).toMatch(/^count\s+succeeded\s+1\s+4\/4 done, 0 failed\s+[0-9a-f]{32}/m);
    expect(r.code).toBe(0);
  });

  it("start --watch exits 1 when the run fails; -o json prints the run", async () => {
    expect((await cli(["dag", "apply", "-f", files.fails])).code).toBe(0);
    const r = await cli(["run", "start", "cli-fails", "--watch", "--interval", "300", "-o", "json"]);
    const run = JSON.parse(r.stdout);
    expect(run.status).toBe("failed");
    expect(run.nodes[0]).toMatchObject({ nodeId: "broken", status: "failed" });
    expect(r.code).toBe(1);
  });

  it("cancel, then watch exits 3 with the cancelled run; a second cancel is a conflict", async () => {
    expect((await cli(["dag", "apply", "-f", files.slow])).code).toBe(0);
    const started = await json(["run", "start", "cli-slow"]);
    expect(started).toMatchObject({ dag: "cli-slow", status: expect.stringMatching(/^(queued|running)$/) });
    const cancelled = await cli(["run", "cancel", started.id]);
    expect(cancelled.stdout).toMatch(new RegExp(`^run ${started.id}: (cancelling|cancelled)\\n$`));
    const watched = await cli(["run", "watch", started.id, "--interval", "300"]);
    expect(watched.stdout).toMatch(/^status:\s+cancelled$/m);
    expect(watched.code).toBe(3);
    await fails(["run", "cancel", started.id], "(conflict, HTTP 409)");
  });

  it("start refuses unknown DAGs (404), undeclared params (422) and malformed -P", async () => {
    await fails(["run", "start", "nope"], 'error: DAG "nope" not found (not_found, HTTP 404)', /^ {2}dag: not found$/m);
    await fails(["run", "start", "wordcount", "-P", "nope=1"], "(invalid_dag, HTTP 422)", /^ {2}params\.nope: /m);
    await fails(["run", "start", "wordcount", "-P", "top"], "error: Invalid format for -P parameter: 'top'. Use -P name=value.");
    await fails(["run", "start", "wordcount", "-P", "top=1", "-P", "top=2"], "error: Repeated parameter: 'top'");
  });

  it("list, get, logs", async () => {
    const runs = await json(["run", "list", "--dag", "wordcount"]);
    expect(runs.length).toBeGreaterThanOrEqual(1);
    expect(runs.every((r: any) => r.dag === "wordcount")).toBe(true);
    const failed = await json(["run", "list", "--status", "failed"]);
    expect(failed.map((r: any) => r.dag)).toEqual(["cli-fails"]);
    const yaml = parseYaml((await cli(["run", "list", "--limit", "1", "-o", "yaml"])).stdout);
    expect(yaml).toHaveLength(1);

    const id = runs[0].id as string;
    const run = await json(["run", "get", id]);
    expect(run).toMatchObject({ id, status: "succeeded", nodes: expect.any(Array) });
    expect((await cli(["run", "get", id])).stdout).toMatch(new RegExp(`^run:\\s+${id}$`, "m"));
    await fails(["run", "get", "nope"], 'error: run "nope" not found (not_found, HTTP 404)');

    const logs = await cli(["run", "logs", id]);
    expect(logs.code).toBe(0);
    const merge = run.nodes.find((n: any) => n.nodeId === "merge");
    expect(logs.stdout).toMatch(new RegExp(`^merge\\s+succeeded\\s+${merge.mlflowRunId}\\s+parallels/logs/stdout.log$`, "m"));
    expect(logs.stdout).toMatch(/^count\s+succeeded\s+[0-9a-f]{32}\s+parallels\/logs\/stdout.log of each partition's nested run$/m);
    expect(logs.stdout).toContain("no logs endpoint yet");
    expect(await json(["run", "logs", id, "merge"])).toEqual([
      { nodeId: "merge", status: "succeeded", mlflowRunId: merge.mlflowRunId, mlflowUrl: merge.mlflowUrl, logs: ["parallels/logs/stdout.log", "parallels/logs/stderr.log"], partitioned: false },
    ]);
    await fails(["run", "logs", id, "nope"], `error: run ${id} has no step "nope"; its steps: count, merge, split`);
  });
});

describe("parallels schedule", { timeout: 60_000 }, () => {
  it("add, list, pause, resume, rm", async () => {
    const added = await cli(["schedule", "add", "nightly", "--dag", "wordcount", "--cron", "0 3 * * *", "--timezone", "Europe/Paris", "-P", "top=2"]);
    expect(added.code).toBe(0);
    expect(added.stdout).toMatch(/^cron:\s+0 3 \* \* \* \(Europe\/Paris\)$/m);
    expect(added.stdout).toMatch(/^params:\s+top=2$/m);
    expect((await json(["schedule", "list"])).map((s: any) => [s.name, s.enabled])).toEqual([["nightly", true]]);
    expect((await cli(["schedule", "list"])).stdout).toMatch(/^nightly\s+wordcount\s+0 3 \* \* \*\s+Europe\/Paris\s+yes\s/m);
    expect(await json(["schedule", "pause", "nightly"])).toMatchObject({ name: "nightly", enabled: false });
    expect((await cli(["schedule", "resume", "nightly"])).stdout).toMatch(/^schedule nightly: enabled, next run \S+ \S+Z\n$/);
    expect(await cli(["schedule", "rm", "nightly"])).toMatchObject({ code: 0, stdout: "deleted schedule nightly\n" });
    await fails(["schedule", "pause", "nightly"], 'error: schedule "nightly" not found (not_found, HTTP 404)');
    await fails(["schedule", "resume", "nightly"], "(not_found, HTTP 404)");
    await fails(["schedule", "rm", "nightly"], "(not_found, HTTP 404)");
  });

  it("refuses a bad cron expression (with its path), an unknown DAG and missing options", async () => {
    await fails(["schedule", "add", "bad", "--dag", "wordcount", "--cron", "every day"], "error: invalid schedule (invalid_request, HTTP 400)", /^ {2}cron: /m);
    await fails(["schedule", "add", "bad", "--dag", "nope", "--cron", "0 3 * * *"], "(not_found, HTTP 404)");
    await fails(["schedule", "add", "bad", "--dag", "wordcount"], "error: required option '--cron <expression>' not specified");
  });
});
