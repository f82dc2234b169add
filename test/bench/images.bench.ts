/**
 * Image builds, for real on this machine (buildah, podman, a registry on 127.0.0.1, the
 * Debian-made Python base; pip through the machine's proxy with its CA as the build's extra CA):
 * - the generated Dockerfile of a python_env project (one pinned dependency) built and pushed,
 *   cold (empty container storage, nothing in the registry) and warm (layers cached, pushed
 *   again);
 * - the registry check (`HEAD /v2/<name>/manifests/<tag>`) of an image that is there;
 * - one node of 100 partitions run by the local executor with `--containers podman`: how many
 *   builds it costs (one, for all partitions) and the wall time per partition.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLocalExecutor } from "../../agent/src/executor/local/index";
import { planStepImage, type StepImages } from "../../agent/src/executor/shared/images";
import { recorder, workFor } from "../../agent/src/executor/testing";
import { BuildahBuilder } from "../../agent/src/images/buildah";
import { RegistryClient, RegistryImageStore } from "../../agent/src/images/registry";
import { ImageService } from "../../agent/src/images/service";
import { DEFAULT_BASE_IMAGES } from "../../proto/images";
import { MlflowClient } from "../../proto/mlflow";
import { BASE_PYTHON, ensureBaseArchive, putBaseImage } from "../../scripts/images/base-image";
import { containerState, removeContainerState } from "../../scripts/images/containers";
import { startRegistry } from "../../scripts/images/registry";
import { ensureContainerTools } from "../../scripts/images/tools";
import { startMlflowServer } from "../../scripts/local/mlflow-server";
import { ensurePythonTools } from "../../scripts/local/python-tools";
import { percentile, type Sample, summarize } from "./stats";

type Row = ReturnType<typeof summarize>;
const log = (line: string) => process.stderr.write(`[bench images] ${line}\n`);
const CA = "/etc/ssl/certs/ca-certificates.crt";

function project(root: string, name: string, pin: string): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "MLproject"), `name: ${name}\npython_env: python_env.yaml\nentry_points:\n  main:\n    command: "python -c pass"\n`);
  writeFileSync(join(dir, "python_env.yaml"), `python: "${BASE_PYTHON}"\nbuild_dependencies:\n  - pip\ndependencies:\n  - six==${pin}\n`);
  return dir;
}

const row = (label: string, target: string, walls: number[]): Row =>
  summarize(
    label,
    target,
    walls.map((w): Sample => ({ wall: w, cpu: Number.NaN, d1: 0 })),
  );

export async function benchImages(): Promise<Row[]> {
  ensureContainerTools(log);
  await ensurePythonTools(log);
  const archive = ensureBaseArchive(log);
  const dir = mkdtempSync(join(tmpdir(), "parallels-bench-images-"));
  const registry = await startRegistry(join(dir, "run"));
  const mlflowServer = await startMlflowServer();
  const rows: Row[] = [];
  const states: ReturnType<typeof containerState>[] = [];
  try {
    const setup = containerState(join(dir, "setup"), [registry.host]);
    states.push(setup);
    putBaseImage(archive, `docker://${registry.host}/parallels-bench/python:${BASE_PYTHON}-debian-bookworm`, setup.env);
    const bases = { ...DEFAULT_BASE_IMAGES, registry: registry.host, pythonRepository: "parallels-bench/python", pythonTag: "{minor}-debian-bookworm" };
    const client = new RegistryClient({ plainHttp: [registry.host] });
    const servicesIn = (state: ReturnType<typeof containerState>) =>
      new ImageService(new RegistryImageStore(client, registry.host), new BuildahBuilder({ env: state.env, caBundle: CA, push: true, plainHttp: [registry.host], tmpDir: join(state.dir, "tmp") }));

    // Cold: a fresh container storage each time, a prefix the registry has never seen.
    const cold: number[] = [];
    const pins = ["1.17.0", "1.16.0", "1.15.0"];
    let last: { images: StepImages; ref: string; state: ReturnType<typeof containerState> } | undefined;
    for (const [i, pin] of pins.entries()) {
      const state = containerState(join(dir, `cold-${i}`), [registry.host]);
      states.push(state);
      const images: StepImages = { service: servicesIn(state), settings: { target: { registry: registry.host, prefix: `bench-cold-${i}` }, bases } };
      const { plan } = await planStepImage(images, project(dir, `cold-${i}`, pin));
      const t0 = performance.now();
      const ensured = await images.service.ensure(plan);
      cold.push(performance.now() - t0);
      last = { images, ref: ensured.ref, state };
      log(`cold build ${i + 1}/${pins.length}: ${(cold.at(-1)! / 1000).toFixed(1)} s`);
    }
    rows.push(row("generated Dockerfile (python_env, 1 pin): build + push, cold", "seconds", cold));

    // Warm: the same Dockerfile again (layers cached), built and pushed again.
    const warm: number[] = [];
    for (let i = 0; i < 5; i++) {
      const rebuild = new ImageService({ description: "forced miss", digest: async () => null }, last!.images.service.builder);
      const { plan } = await planStepImage({ ...last!.images, service: rebuild }, project(dir, "cold-2", "1.15.0"));
      const t0 = performance.now();
      await rebuild.ensure(plan).catch(() => undefined); // the store says "missing" after the build too: only the build is timed
      warm.push(performance.now() - t0);
    }
    rows.push(row("generated Dockerfile: rebuild + push, warm (layer cache)", "< 5 s", warm));

    // The registry check of an image that is there.
    const checks: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t0 = performance.now();
      if (!(await client.manifestDigest(last!.ref.split("@")[0]!))) throw new Error("the registry lost the image");
      checks.push(performance.now() - t0);
    }
    rows.push(row("registry check (HEAD manifest, hit, 127.0.0.1)", "< 50 ms", checks));

    // One node of 100 partitions: one image, however many partitions run in it.
    const state = last!.state;
    const images: StepImages = { service: servicesIn(state), settings: { target: { registry: registry.host, prefix: "bench-partitions" }, bases } };
    const input = join(dir, "items");
    mkdirSync(input, { recursive: true });
    for (let i = 0; i < 100; i++) writeFileSync(join(input, `item-${String(i).padStart(3, "0")}.txt`), `${i}\n`);
    const stateDir = join(dir, "agent");
    const ex = createLocalExecutor({
      stateDir,
      trackingUri: mlflowServer.url,
      mlflow: new MlflowClient({ trackingUri: mlflowServer.url }),
      pollMs: 100,
      projectsRoot: dir,
      maxProcesses: 8,
      logUploadMs: 0,
      containers: { ...images, env: state.env, plainHttp: [registry.host] },
    });
    try {
      const rec = recorder();
      const t0 = performance.now();
      await ex.start(
        workFor({ id: "fanout", project: { uri: project(dir, "fanout", "1.17.0") }, inputs: { items: { uri: input } }, partition: { by: "object", input: "items" }, parallelism: 8 }),
        rec,
      );
      const end = await rec.waitFor("succeeded", 1_800_000);
      const wall = performance.now() - t0;
      const stats = images.service.stats;
      log(`100 partitions: ${(wall / 1000).toFixed(1)} s, builds ${stats.builds}, registry checks ${stats.checks}; ${JSON.stringify(end.counts)}`);
      const perPartition = wall / 100;
      rows.push({ ...row(`one node, 100 partitions in containers: ${stats.builds} builds (env + project), ${stats.checks} registry checks`, "1 build per image", [wall]), d1: "—" });
      rows.push({ ...row("  … wall per partition (podman run, parallelism 8, 2 cores)", "", [perPartition]), d1: "—" });
    } finally {
      await ex.close();
    }
    log(
      `registry check p99 ${percentile(
        [...checks].sort((a, b) => a - b),
        99,
      ).toFixed(1)} ms`,
    );
  } finally {
    await mlflowServer.stop();
    await registry.stop();
    for (const s of states) removeContainerState(s);
    rmSync(dir, { recursive: true, force: true });
  }
  return rows.map((r) => ({ ...r, d1: "—" }));
}

// `npx tsx test/bench/images.bench.ts`: this bench alone.
if (import.meta.url === `file://${process.argv[1]}`) {
  const { printTable } = await import("./stats");
  printTable(await benchImages());
}
