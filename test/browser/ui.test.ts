/**
 * The web UI in Debian's Chromium (headless, playwright-core), served by the control plane under
 * `wrangler dev` as static assets, against the embedded default: NATS, `mlflow server`, the control
 * plane and a local agent whose projects root holds the example wordcount projects.
 *
 * As a person would: sign in; build the wordcount DAG by dragging three steps from the palette and
 * connecting them; see a validation error appear on a bad parameter and go away when fixed; save;
 * start a run and watch every step turn succeeded; open a step's MLflow run; cancel a second run;
 * find runs by filter; be told of someone else's save; add a cluster. Controls are found by their
 * accessible names. The screenshots in docs/ are taken here.
 */
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { parse as parseYaml } from "yaml";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { AgentProcess } from "../../scripts/local/agent";
import { ROOT } from "../../scripts/local/control-plane";
import { startEmbedded, type Embedded } from "../../scripts/local/embedded";
import { startLocalAgent } from "../../scripts/local/local-agent";
import { type Browser, launchChromium } from "./chromium";

const TOKEN = "ui-test-admin-token";
const DAG = "wc-ui";
const SHOTS = join(ROOT, "docs");

let state: string;
let env: Embedded;
let agent: AgentProcess;
let browser: Browser;
let page: Page;
/** Answers of the run view's polls: 304s show the ETag at work. */
const runPolls: number[] = [];

async function api(method: string, path: string, body?: string, type = "application/json"): Promise<any> {
  const res = await fetch(env.control.url + path, { method, headers: { authorization: `Bearer ${TOKEN}`, "content-type": type }, body });
  return res.json();
}

beforeAll(async () => {
  state = mkdtempSync(join(tmpdir(), "parallels-ui-"));
  const projects = join(state, "projects");
  cpSync(join(ROOT, "examples/wordcount"), projects, { recursive: true });
  env = await startEmbedded({ stateDir: state, adminToken: TOKEN, ports: "free" });
  agent = await startLocalAgent(env, { stateDir: join(state, "agent"), projectsRoot: projects });
  browser = await launchChromium();
  page = await browser.context.newPage();
  // A laptop's screen.
  await page.setViewportSize({ width: 1440, height: 900 });
  // The page's own errors, in the test's output: what broke when a control never appears.
  page.on("pageerror", (e) => console.error(`page error: ${e.message}`));
  page.on("console", (m) => m.type() === "error" && console.error(`page console: ${m.text()}`));
  page.on("response", (r) => {
    if (/\/v1\/runs\/[^/]+$/.test(new URL(r.url()).pathname) && r.request().method() === "GET") runPolls.push(r.status());
  });
});

// What the page showed when a test failed, to see why.
afterEach(async (ctx) => {
  if (ctx.task.result?.state !== "fail" || !page) return;
  const file = join(tmpdir(), `parallels-ui-failed-${ctx.task.name.slice(0, 40).replace(/\W+/g, "-")}.png`);
  await page.screenshot({ path: file }).catch(() => undefined);
  console.log(`the page when "${ctx.task.name}" failed: ${file}`);
});

afterAll(async () => {
  await browser?.close();
  await agent?.stop();
  await env?.stop();
  if (state) rmSync(state, { recursive: true, force: true });
});

/** Waits for what a page shows: it comes after requests, polls and renders (vitest's default is 1 s). */
const eventually = <T>(read: () => Promise<T>, timeout = 20_000) => expect.poll(read, { timeout, interval: 200 });

/** The selected step runs on a cluster with the label the embedded default's cluster has. */
async function selectLocalByLabel() {
  await page.getByLabel("Runs on").selectOption("labels");
  await page.getByLabel("Name of label 1").fill("embedded");
  await page.getByLabel("Value of label embedded").fill("true");
}

/** Drags a palette item onto the canvas at a point of it; the new step is selected. */
async function dropStep(item: string, x: number, y: number) {
  await page.getByRole("button", { name: new RegExp(`^${item}:`) }).dragTo(page.getByRole("region", { name: "DAG canvas" }), { targetPosition: { x, y } });
}

describe("the web UI on the embedded default", () => {
  it("signs in with a token kept for the tab, and names the workspace", async () => {
    await page.goto(`${env.control.url}/`);
    await page.getByLabel("API token").fill("pl_not-a-token");
    await page.getByRole("button", { name: "Sign in" }).click();
    await eventually(() => page.getByRole("alert").textContent()).toContain("unknown or revoked token");

    await page.getByLabel("API token").fill(TOKEN);
    await page.getByRole("button", { name: "Sign in" }).click();
    await eventually(() => page.getByTestId("workspace").textContent()).toBe("default");
    expect(await page.evaluate(() => sessionStorage.getItem("parallels.token"))).toBe(TOKEN);
    // A reload keeps the session (session storage), and the API still answers beside the page.
    await page.reload();
    await eventually(() => page.getByTestId("workspace").textContent()).toBe("default");
    expect((await api("GET", "/v1/whoami")).workspace).toBe("default");
  });

  it("shows the local cluster online with its agent's capacity, and adds a cluster with its helm line once", async () => {
    await page.getByRole("link", { name: "Clusters", exact: true }).click();
    const local = page.getByRole("row", { name: /^local / });
    // Refreshed as heartbeats come: the agent registers while the page is open.
    await eventually(() => local.textContent(), 60_000).toMatch(/online/);
    // The local agent reports this machine's cores and memory; no Kubernetes.
    expect(await local.textContent()).toMatch(/\d+ CPU · \d+Mi memory · 0 GPU/);
    expect(await local.textContent()).toMatch(/embedded=true/);

    await page.getByRole("button", { name: "Add cluster" }).click();
    const dialog = page.getByRole("dialog", { name: "Add cluster" });
    await dialog.getByLabel("Name").fill("gpu-lab");
    await dialog.getByLabel(/^Labels/).fill("gpu=true, zone=eu");
    await dialog.getByRole("button", { name: "Add cluster" }).click();
    const install = page.getByRole("dialog", { name: "Install the agent of gpu-lab" });
    const command = (await install.locator("pre").textContent())!;
    expect(command).toContain("helm upgrade --install");
    await browser.context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: env.control.url });
    await install.getByRole("button", { name: "Copy the helm install command" }).click();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(command);
    await install.getByRole("button", { name: "Done" }).click();
    const lab = page.getByRole("row", { name: /^gpu-lab / });
    await eventually(() => lab.textContent()).toMatch(/awaiting agent.*gpu=true.*zone=eu/);
  });

  it("builds the wordcount DAG by dragging steps from the palette and connecting them; validation shows on the step and field as one types", async () => {
    await page.getByRole("link", { name: "DAGs", exact: true }).click();
    await page.getByRole("link", { name: "New DAG" }).click();
    // The DAG's own fields while no step is selected.
    await page.getByLabel("DAG name").fill(DAG);
    await page.getByRole("button", { name: "Add DAG param" }).click();
    await page.getByLabel("Name of DAG param 1").fill("top");
    await page.getByLabel("Value of DAG param top").fill("3");

    await dropStep("Step", 120, 200);
    await page.getByLabel("Step id").fill("split");
    await page.getByLabel("Project URI").fill("./split");
    await page.getByRole("button", { name: "Add parameter" }).click();
    await page.getByLabel("Name of parameter 1").fill("parts");
    await page.getByLabel("Value of parameter parts").fill("4");
    await page.getByRole("button", { name: "Add input" }).click();
    await page.getByLabel("Name of input 1").fill("corpus");
    // An MLflow experiment's runs as the source: the form writes {experiment, path}.
    await page.getByLabel("Source kind of input corpus").selectOption("experiment");
    await page.getByLabel("Experiment of input corpus").fill("ingest");
    await page.getByLabel("Path inside input corpus").fill("batch");
    await page.getByRole("button", { name: "YAML", exact: true }).click();
    expect(parseYaml(await page.getByLabel("DAG document in YAML").inputValue()).nodes[0].inputs).toEqual({ corpus: { experiment: "ingest", path: "batch" } });
    await page.getByRole("dialog", { name: "DAG document (YAML)" }).getByRole("button", { name: "Close" }).click();
    await page.getByLabel("Source kind of input corpus").selectOption("uri");
    await page.getByLabel("URI of input corpus").fill("./corpus");
    // The workspace has two clusters now (gpu-lab above): each step says where it runs, by name or by labels.
    await page.getByLabel("Runs on").selectOption("name");
    await page.getByLabel("Cluster name").fill("local");

    await dropStep("Partitioned step", 420, 200);
    await page.getByLabel("Step id").fill("count");
    await page.getByLabel("Project URI").fill("./count");
    await selectLocalByLabel();

    await dropStep("Step", 720, 200);
    await page.getByLabel("Step id").fill("merge");
    await page.getByLabel("Project URI").fill("./merge");
    await selectLocalByLabel();

    await page.getByLabel("Output of split").dragTo(page.getByLabel("New input of count"));
    await page.getByLabel("Output of count").dragTo(page.getByLabel("New input of merge"));
    // The edges are the document's inputs: count's and merge's panels list them.
    await page.getByRole("group", { name: /^Step count/ }).click();
    await eventually(() => page.getByLabel("Upstream step of input split").inputValue()).toBe("split");
    await page.getByLabel("Partitioned input").selectOption("split");
    // A hash of a metadata field, and a regex over one (the shapes of proto/dag/schema.ts), each
    // judged by the DAG schema as typed: an empty field name is a problem under its field.
    const yamlPartition = async () => {
      await page.getByRole("button", { name: "YAML", exact: true }).click();
      const doc = parseYaml(await page.getByLabel("DAG document in YAML").inputValue());
      await page.getByRole("dialog", { name: "DAG document (YAML)" }).getByRole("button", { name: "Close" }).click();
      return doc.nodes.find((n: any) => n.id === "count").partition;
    };
    await page.getByLabel("Partition by").selectOption("hash");
    await page.getByLabel("Hash key").selectOption("metadata");
    const keyField = page.getByLabel("Key metadata field", { exact: true });
    await eventually(() => keyField.getAttribute("aria-invalid")).toBe("true");
    await keyField.fill("label");
    await eventually(() => keyField.getAttribute("aria-invalid")).toBe("false");
    expect(await yamlPartition()).toEqual({ by: "hash", input: "split", partitions: 4, key: { metadata: "label" } });
    await page.getByLabel("Partition by").selectOption("regex");
    await page.getByLabel("Match pattern against").selectOption("metadata");
    const regexField = page.getByLabel("Metadata field", { exact: true });
    await eventually(() => regexField.getAttribute("aria-invalid")).toBe("true");
    await regexField.fill("label");
    await page.getByLabel("Pattern", { exact: true }).fill("^(cat|dog)$");
    await eventually(() => regexField.getAttribute("aria-invalid")).toBe("false");
    expect(await yamlPartition()).toEqual({ by: "regex", input: "split", pattern: "^(cat|dog)$", metadata: "label" });
    await page.getByLabel("Partition by").selectOption("object");

    // A bad parameter: a DAG param that does not exist. The problem shows under the field and on the step.
    await page.getByRole("group", { name: /^Step merge/ }).click();
    await page.getByRole("button", { name: "Add parameter" }).click();
    await page.getByLabel("Name of parameter 1").fill("top");
    const top = page.getByLabel("Value of parameter top");
    await top.fill("${params.tpo}");
    await eventually(() => top.getAttribute("aria-invalid")).toBe("true");
    const problem = page.locator(`#${await top.getAttribute("aria-describedby")}`);
    expect(await problem.textContent()).toMatch(/tpo/);
    await eventually(() => page.getByRole("group", { name: /^Step merge, 1 problem/ }).count()).toBe(1);
    expect(await page.getByRole("button", { name: "Save version" }).isDisabled()).toBe(true);
    // A pause in typing: the fix is an undo step of its own (typing in one field within a second is one).
    await page.waitForTimeout(1100);
    await top.fill("${params.top}");
    await eventually(() => top.getAttribute("aria-invalid")).toBe("false");
    await eventually(() => page.getByRole("group", { name: /^Step merge, / }).count()).toBe(0);

    // Undo and redo go through the document's history.
    await page.getByRole("button", { name: "Undo" }).click();
    await eventually(() => top.inputValue()).toBe("${params.tpo}");
    await page.getByRole("button", { name: "Redo" }).click();
    await eventually(() => top.inputValue()).toBe("${params.top}");

    await page.getByRole("button", { name: "Auto-layout" }).click();
    await page.getByRole("group", { name: /^Step count/ }).click();
    await eventually(() => page.getByRole("status").filter({ hasText: "problem" }).count()).toBe(0);
    await page.waitForTimeout(400); // the layout's fit animation
    await page.screenshot({ path: join(SHOTS, "ui-editor.png") });

    await page.getByRole("button", { name: "Save version" }).click();
    await eventually(() => page.getByText("Saved as version 1").count()).toBe(1);
    const saved = await api("GET", `/v1/dags/${DAG}`);
    expect(saved.spec.nodes.map((n: any) => [n.id, n.project.uri, n.inputs, n.partition ?? null, n.parameters ?? null])).toEqual([
      ["split", "./split", { corpus: { uri: "./corpus" } }, null, { parts: 4 }],
      ["count", "./count", { split: { node: "split" } }, { by: "object", input: "split" }, null],
      ["merge", "./merge", { count: { node: "count" } }, null, { top: "${params.top}" }],
    ]);
    expect(saved.spec.params).toEqual({ top: 3 });
    expect(saved.spec.nodes.map((n: any) => n.cluster)).toEqual(["local", { embedded: "true" }, { embedded: "true" }]);

    // The YAML the editor shows (and exports) is what the API takes: sent as is, it is the same version.
    await page.getByRole("button", { name: "YAML", exact: true }).click();
    const yaml = await page.getByLabel("DAG document in YAML").inputValue();
    await page.getByRole("dialog", { name: "DAG document (YAML)" }).getByRole("button", { name: "Close" }).click();
    expect(parseYaml(yaml).nodes).toHaveLength(3);
    expect((await api("PUT", `/v1/dags/${DAG}`, yaml, "application/yaml")).version).toBe(1);
  });

  it("starts a run with params and shows every step turn succeeded without a reload; a step's MLflow link opens its run", async () => {
    await page.getByRole("button", { name: "Start run…" }).click();
    const dialog = page.getByRole("dialog", { name: `Start a run of ${DAG} v1` });
    expect(await dialog.getByLabel("Run param top").inputValue()).toBe("3");
    await dialog.getByLabel("Run param top").fill("5");
    // The agent paused for a moment (as a busy one is): the run waits, and its view, unchanged,
    // is polled with its ETag and answered 304 without a body.
    process.kill(agent.pid, "SIGSTOP");
    try {
      await dialog.getByRole("button", { name: "Start run" }).click();
      await page.waitForURL(/#\/runs\/[^/]+$/);
      runPolls.length = 0;
      await eventually(async () => runPolls.filter((s) => s === 304).length, 20_000).toBeGreaterThan(0);
    } finally {
      process.kill(agent.pid, "SIGCONT");
    }
    const runId = decodeURIComponent(page.url().split("/").at(-1)!);

    for (const step of ["split", "count", "merge"]) {
      await eventually(() => page.getByRole("group", { name: `${step}: succeeded` }).count(), 150_000).toBe(1);
    }
    await eventually(() => page.getByRole("status", { name: "Run status" }).textContent(), 30_000).toBe("succeeded");
    // The partitioned step shows its partitions as counts.
    expect(await page.getByRole("group", { name: "count: succeeded" }).textContent()).toContain("4/4 done · 0 running · 0 failed");
    const run = await api("GET", `/v1/runs/${runId}`);
    expect([run.status, run.params]).toEqual(["succeeded", { top: 5 }]);
    await page.screenshot({ path: join(SHOTS, "ui-run.png") });

    // A step's MLflow run, in the MLflow UI that the embedded default serves.
    const link = page.getByRole("link", { name: "MLflow run of merge" });
    const count = run.nodes.find((n: any) => n.nodeId === "merge");
    expect(await link.getAttribute("href")).toBe(count.mlflowUrl);
    const [mlflow] = await Promise.all([page.context().waitForEvent("page"), link.click()]);
    await mlflow.waitForLoadState("load");
    await eventually(() => mlflow.title(), 30_000).toMatch(/MLflow/);
    await eventually(() => mlflow.getByText(count.mlflowRunId).count(), 30_000).toBeGreaterThan(0);
    await mlflow.close();
  });

  it("cancels a second run from its page; run history filters by DAG and status", async () => {
    await page.getByRole("link", { name: "DAGs", exact: true }).click();
    await page.getByRole("button", { name: `Start a run of ${DAG}` }).click();
    await page
      .getByRole("dialog", { name: `Start a run of ${DAG} v1` })
      .getByRole("button", { name: "Start run" })
      .click();
    await page.waitForURL(/#\/runs\/[^/]+$/);
    const runId = decodeURIComponent(page.url().split("/").at(-1)!);
    await page.getByRole("button", { name: "Cancel run" }).click();
    await eventually(() => page.getByRole("status", { name: "Run status" }).textContent(), 90_000).toBe("cancelled");
    expect((await api("GET", `/v1/runs/${runId}`)).status).toBe("cancelled");
    expect(await page.getByRole("button", { name: "Cancel run" }).count()).toBe(0);

    await page.getByRole("link", { name: "Runs", exact: true }).click();
    await page.getByLabel("DAG").selectOption(DAG);
    await eventually(() => page.getByRole("row").count()).toBe(3); // a header and two runs
    await page.getByLabel("Status").selectOption("cancelled");
    await eventually(() => page.getByRole("row").count()).toBe(2);
    expect(await page.getByRole("row").nth(1).textContent()).toContain(runId);
    await page.getByLabel("Status").selectOption("failed");
    await eventually(() => page.getByText("No run matches these filters").count()).toBe(1);
  });

  it("tells of a version someone else saved since the editor opened, before writing anything", async () => {
    await page.goto(`${env.control.url}/#/dags/${DAG}/edit`);
    await page.getByLabel("Description").fill("counted in the browser");
    // Meanwhile, someone applies a version from the CLI.
    const theirs = await api("GET", `/v1/dags/${DAG}`);
    expect((await api("PUT", `/v1/dags/${DAG}`, JSON.stringify({ ...theirs.spec, description: "theirs" }))).version).toBe(2);

    await page.getByRole("button", { name: "Save version" }).click();
    const conflict = page.getByRole("dialog", { name: "Someone saved this DAG meanwhile" });
    await eventually(() => conflict.textContent()).toContain("You opened version 1");
    expect(await conflict.textContent()).toContain("version 2 was saved since");
    expect((await api("GET", `/v1/dags/${DAG}`)).latestVersion).toBe(2);
    await conflict.getByRole("button", { name: "Save mine as version 3" }).click();
    await eventually(() => page.getByText("Saved as version 3").count()).toBe(1);
    expect((await api("GET", `/v1/dags/${DAG}`)).spec.description).toBe("counted in the browser");
  });
});
