// Real builds with buildah of small projects (python_env with one pinned dependency; docker_env on
// the Debian-made base): one build however many attempts ask at once, none when nothing changed,
// exactly one when a pinned version changes, a failed build's message naming the failing
// instruction with the end of its log and its retry reusing the layers already built; and the
// local executor with `--containers podman`: the node `building` then `built`, the build log in
// its MLflow run, a docker_env's volumes and environment honoured as `mlflow run` honours them.
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLocalExecutor, type LocalExecutor, type LocalExecutorOptions } from "../../agent/src/executor/local/index";
import { planStepImage, type StepImages } from "../../agent/src/executor/shared/images";
import { recorder, workFor } from "../../agent/src/executor/testing";
import { BuildFailure } from "../../agent/src/images/service";
import { MlflowClient } from "../../proto/mlflow/index";
import { MLFLOW_START_TIMEOUT_MS, startMlflowServer, type MlflowTestServer } from "../support/mlflow-server";
import { type ImagesHarness, imagesHarness, suite, testBases } from "./support";

let server: MlflowTestServer;
let mlflow: MlflowClient;
let h: ImagesHarness;
let images: StepImages;
const executors: LocalExecutor[] = [];
const cleanup: string[] = [];

beforeAll(async () => {
  server = await startMlflowServer();
  mlflow = new MlflowClient({ trackingUri: server.url, retry: { maxRetries: 2, baseDelayMs: 50 } });
  h = imagesHarness(`builds-${process.pid}`);
  images = { service: h.service, settings: { target: h.target, bases: testBases() } };
}, MLFLOW_START_TIMEOUT_MS);

afterAll(async () => {
  await Promise.all(executors.map((e) => e.close()));
  await server?.stop();
  h?.cleanup();
  for (const d of cleanup) rmSync(d, { recursive: true, force: true });
});

function project(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "parallels-images-project-"));
  cleanup.push(dir);
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(join(dir, p, ".."), { recursive: true });
    writeFileSync(join(dir, p), text);
  }
  return dir;
}

const SIX = (version: string, extra: string[] = []) => ({
  MLproject: ["name: six-step", "python_env: python_env.yaml", "entry_points:", "  main:", '    command: "python show.py"', ""].join("\n"),
  "python_env.yaml": ['python: "3.11"', "build_dependencies:", "  - pip", "dependencies:", `  - six==${version}`, ...extra.map((d) => `  - ${d}`), ""].join("\n"),
  "show.py": "import os, six\nprint('six', six.__version__, 'uid', os.getuid(), 'cwd', os.getcwd())\n",
});

function executor(over: Partial<LocalExecutorOptions> = {}): LocalExecutor {
  const stateDir = mkdtempSync(join(tmpdir(), "parallels-images-agent-"));
  cleanup.push(stateDir);
  const ex = createLocalExecutor({
    stateDir,
    trackingUri: server.url,
    mlflow,
    pollMs: 100,
    projectsRoot: tmpdir(),
    containers: { ...images, env: h.state.env, plainHttp: [suite().registry] },
    ...over,
  });
  executors.push(ex);
  return ex;
}

describe("building once", () => {
  let first = "";

  it("three attempts asking at once for a missing image wait for one build of each image", async () => {
    const dir = project(SIX("1.17.0"));
    const { plan } = await planStepImage(images, dir);
    const before = { ...h.service.stats };
    const t0 = Date.now();
    const results = await Promise.all([1, 2, 3].map(() => h.service.ensure(plan)));
    console.log(`[images] six: env + project images built and pushed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    expect(new Set(results.map((r) => r.ref)).size).toBe(1);
    expect(h.service.stats.builds - before.builds).toBe(2); // the environment and the project, once each
    expect(h.service.stats.joined - before.joined).toBeGreaterThanOrEqual(2);
    first = results[0]!.ref;
    const out = execFileSync("podman", ["run", "--rm", "--network=none", first], { env: h.state.env, encoding: "utf8" });
    expect(out).toBe(""); // the base's CMD is python3 with no script: nothing printed, exit 0
  });

  it("no change: the registry check hits and nothing is built; a changed pinned version builds once more, to a new tag", async () => {
    const dir = project(SIX("1.17.0"));
    const { plan } = await planStepImage(images, dir);
    const before = { ...h.service.stats };
    // The same files in another folder: the same images (tags come from content, not from where it is).
    expect((await h.service.ensure(plan)).ref).toBe(first);
    expect(h.service.stats.builds).toBe(before.builds);

    const changed = await planStepImage(images, project(SIX("1.16.0")));
    expect(changed.plan.steps[0]!.ref).not.toBe(plan.steps[0]!.ref);
    const results = await Promise.all([h.service.ensure(changed.plan), h.service.ensure(changed.plan)]);
    expect(results[0]!.ref).toBe(results[1]!.ref);
    expect(h.service.stats.builds - before.builds).toBe(2);
    const version = execFileSync("podman", ["run", "--rm", "--network=none", results[0]!.ref, "python", "-c", "import six; print(six.__version__)"], { env: h.state.env, encoding: "utf8" });
    expect(version.trim()).toBe("1.16.0");
    // And again: nothing more.
    await h.service.ensure(changed.plan);
    expect(h.service.stats.builds - before.builds).toBe(2);
  });
});

describe("a failed build", () => {
  it("names the failing instruction and ends with the log's last lines; the retry reuses the layers built before the failure", async () => {
    const dir = project(SIX("1.17.0", ["parallels-no-such-package-b7c1==0.0.1"]));
    const { plan } = await planStepImage(images, dir);
    const log: string[] = [];
    const failure = await h.service.ensure(plan, { onLog: (t) => log.push(t) }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(BuildFailure);
    const message = (failure as BuildFailure).message;
    expect(message).toMatch(/^building the image .*\/env:[0-9a-f]{32} failed at RUN --mount=type=secret,id=parallels-ca .* python -m pip install -r parallels\.dependencies\.txt/);
    expect(message).toContain("last lines of the build log (parallels/build.log):");
    expect(message).toMatch(/No matching distribution found for parallels-no-such-package-b7c1==0\.0\.1/);
    expect(h.service.building()).toEqual([]);

    const retry: string[] = [];
    await h.service.ensure(plan, { onLog: (t) => retry.push(t) }).catch(() => undefined);
    // The steps before the failing one come from the layers the first try built.
    const cached = retry.join("").match(/Using cache/g) ?? [];
    expect(cached.length).toBeGreaterThanOrEqual(3); // the venv, the env files, the build dependencies
  });
});

describe("the local executor with --containers podman", () => {
  it("a node waits for its image (building, then built), the build log is in its MLflow run, then it runs in the image as the image's user", async () => {
    const dir = project({ ...SIX("1.17.0"), "python_env.yaml": 'python: "3.11"\ndependencies:\n  - six==1.17.0\n  - packaging==24.1\n' });
    const ex = executor();
    const rec = recorder();
    await ex.start(workFor({ id: "six", project: { uri: dir } }, { dag: { name: "images-local", version: 1 } }), rec);
    const end = await rec.waitFor("succeeded", 300_000).catch(() => rec.events.at(-1)!);
    expect(end.type, end.message).toBe("succeeded");
    const types = rec.types();
    expect(types.slice(0, 2)).toEqual(["building", "building"]);
    expect(types.indexOf("built")).toBeLessThan(types.indexOf("running"));
    const building = rec.events.filter((e) => e.type === "building");
    expect(building.map((e) => e.imageRef!.replace(/:[0-9a-f]{32}$/, ""))).toEqual([`${suite().registry}/${h.target.prefix}/env`, `${suite().registry}/${h.target.prefix}/project-six-step`]);
    const runId = building[0]!.mlflowRunId!;
    const log = await mlflow.downloadArtifactText(runId, "parallels/build.log");
    expect(log).toMatch(/STEP \d+\/\d+: FROM /);
    expect(log).toMatch(/Successfully installed .*packaging-24\.1/);
    const run = await mlflow.getRun(runId);
    expect(run.data.tags["mlflow.docker.image.uri"]).toBe(building[1]!.imageRef);
    expect(await mlflow.downloadArtifactText(runId, "parallels/logs/stdout.log")).toBe("six 1.17.0 uid 10001 cwd /mlflow/projects/code\n");
  });

  it("a docker_env project: the user's image with the project added; its volumes and environment as `mlflow run` passes them", async () => {
    const data = mkdtempSync(join(tmpdir(), "parallels-images-volume-"));
    cleanup.push(data);
    writeFileSync(join(data, "note.txt"), "from the host volume");
    chmodSync(data, 0o755); // the image's user (10001) reads the volume
    const s = suite();
    const dir = project({
      MLproject: [
        "name: docker-step",
        "docker_env:",
        `  image: ${s.registry}/${s.baseRepository}:${s.baseTag}`,
        `  volumes: ["${data}:/data"]`,
        '  environment: [["GREETING", "hello from docker_env"], "COPIED_VAR"]',
        "entry_points:",
        "  main:",
        "    parameters:",
        "      who: {type: string, default: world}",
        '    command: "python3 show.py {who}"',
        "",
      ].join("\n"),
      "show.py": [
        "import os, sys, pathlib",
        "out = pathlib.Path(os.environ['PARALLELS_OUTPUTS_DIR'])",
        "(out / 'seen.txt').write_text('|'.join([sys.argv[1], os.environ['GREETING'], os.environ['COPIED_VAR'], pathlib.Path('/data/note.txt').read_text(), str(os.getuid()), os.getcwd()]))",
        "",
      ].join("\n"),
    });
    const ex = executor({ env: { ...process.env, COPIED_VAR: "copied from the agent" } });
    const rec = recorder();
    await ex.start(workFor({ id: "docker", project: { uri: dir }, parameters: { who: "there" } }, { dag: { name: "images-local", version: 1 } }), rec);
    const end = await rec.waitFor("succeeded", 300_000).catch(() => rec.events.at(-1)!);
    expect(end.type, end.message).toBe("succeeded");
    // One image to build: the project on the user's image (no environment image for docker_env).
    expect(rec.events.filter((e) => e.type === "building").map((e) => e.imageRef!.replace(/:[0-9a-f]{32}$/, ""))).toEqual([`${s.registry}/${h.target.prefix}/project-docker-step`]);
    const runId = rec.events[0]!.mlflowRunId!;
    expect(await mlflow.downloadArtifactText(runId, "seen.txt")).toBe("there|hello from docker_env|copied from the agent|from the host volume|10001|/mlflow/projects/code");

    // A variable to copy that the agent does not have fails the attempt with MLflow's words.
    const missing = recorder();
    await executor({ env: { ...process.env, COPIED_VAR: undefined } }).start(workFor({ id: "docker2", project: { uri: dir } }), missing);
    expect((await missing.waitFor("failed")).message).toBe("This project expects the COPIED_VAR environment variables to be set on the machine running the project, but COPIED_VAR was not found.");
  });
});
