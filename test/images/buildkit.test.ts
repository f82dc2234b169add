// BuildKit — the product's in-cluster builder — built from the Go module proxy (cached by version),
// running here as buildkitd with buildctl: it builds the same generated Dockerfiles buildah builds,
// with exactly the arguments the agent gives it in a build Job (destination, the CA as a build
// secret, the registry cache), and pushes to the same real registry; podman runs what it built.
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildJob, DEFAULT_BUILDER_IMAGES, WORKSPACE } from "../../agent/src/executor/kubernetes/build-job";
import { planStepImage, type StepImages } from "../../agent/src/executor/shared/images";
import { runTool } from "../../agent/src/images/buildah";
import { RegistryImageStore } from "../../agent/src/images/registry";
import { type Builder, BuildFailure, type BuildRequest, buildFailureMessage, ImageService } from "../../agent/src/images/service";
import { extractTo } from "../../agent/src/images/tar";
import { type Buildkitd, ensureBuildkit, startBuildkitd } from "../../scripts/images/buildkit";
import { HOST_CA_BUNDLE, type ImagesHarness, imagesHarness, suite, testBases } from "./support";

let h: ImagesHarness;
let buildkitd: Buildkitd;
let work: string;

/** buildctl with the build container's arguments of the Job the agent would make for this image (its /workspace here). */
class BuildctlBuilder implements Builder {
  readonly description = "buildkit (buildctl → buildkitd on this machine)";
  async build(req: BuildRequest): Promise<void> {
    const dir = mkdtempSync(join(work, "ctx-"));
    await extractTo(req.context, dir);
    mkdirSync(join(dir, ".parallels"), { recursive: true });
    cpSync(HOST_CA_BUNDLE, join(dir, ".parallels/ca.pem")); // as KubernetesBuilder adds the extra CA to the context
    const job = buildJob({
      name: "b",
      namespace: "n",
      labels: {},
      builder: "buildkit",
      builderImage: DEFAULT_BUILDER_IMAGES.buildkit,
      agentImage: "a",
      destination: req.ref,
      cacheRepository: `${suite().registry}/${h.target.prefix}/cache`,
      context: { trackingUri: "http://unused", runId: "r", path: "p", dir: WORKSPACE },
      plainHttpRegistries: [suite().registry],
      withCa: true,
      imagePullSecrets: [],
      nodeSelector: {},
      tolerations: [],
      timeoutSeconds: 600,
      ttlSecondsAfterFinished: 60,
    });
    const args = job.spec!.template.spec!.containers[0]!.args!.map((a) => a.replaceAll(WORKSPACE, dir));
    req.log(`$ buildctl ${args.join(" ")}\n`);
    const r = await runTool(buildkitd.buildctl, ["--addr", buildkitd.address, ...args], { onOutput: req.log });
    rmSync(dir, { recursive: true, force: true });
    if (r.code !== 0) throw new BuildFailure(buildFailureMessage(req.ref, r.stderr, `buildctl exited with ${r.code}`), r.stderr);
  }
}

beforeAll(async () => {
  const bin = await ensureBuildkit((l) => console.log(l));
  h = imagesHarness(`buildkit-${process.pid}`);
  work = mkdtempSync(join(tmpdir(), "parallels-buildkit-"));
  buildkitd = await startBuildkitd(join(work, "run"), bin, [suite().registry]);
}, 1_800_000);

afterAll(async () => {
  await buildkitd?.stop();
  h?.cleanup();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("BuildKit builds the generated Dockerfile", () => {
  it("of a python_env project, with the Job's arguments, to the same registry as buildah; the two images hold the same environment", async () => {
    const dir = mkdtempSync(join(work, "project-"));
    writeFileSync(join(dir, "MLproject"), 'name: bk-step\npython_env: python_env.yaml\nentry_points:\n  main:\n    command: "python -c 1"\n');
    writeFileSync(join(dir, "python_env.yaml"), 'python: "3.11"\nbuild_dependencies:\n  - pip\ndependencies:\n  - six==1.17.0\n');
    const settings = { target: h.target, bases: testBases() };
    const bk = new ImageService(new RegistryImageStore(h.registry, suite().registry), new BuildctlBuilder());
    const { plan } = await planStepImage({ service: bk, settings } satisfies StepImages, dir);
    const log: string[] = [];
    const t0 = Date.now();
    const built = await bk.ensure(plan, { onLog: (t) => log.push(t) });
    console.log(`[images] BuildKit: env + project images built and pushed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    expect(bk.stats).toMatchObject({ builds: 2 });
    const text = log.join("");
    expect(text).toMatch(/#\d+ \[(?:\S+ )?\d+\/\d+\] RUN --mount=type=secret,id=parallels-ca/);
    expect(text).toMatch(/Successfully installed six-1\.17\.0/);
    expect(text).toMatch(/exporting cache to registry/i);
    expect(await h.registry.manifestDigest(plan.ref)).toBe(built.digest);

    const run = (ref: string, ...cmd: string[]) => execFileSync("podman", ["run", "--rm", "--network=none", ref, ...cmd], { env: h.state.env, encoding: "utf8" });
    const fromBuildkit = run(built.ref, "sh", "-c", "id -u; pwd; python -c 'import six; print(six.__version__)'; ls /mlflow/projects/code; test ! -e /tmp/parallels-ca.pem && echo no-ca");
    expect(fromBuildkit).toBe("10001\n/mlflow/projects/code\n1.17.0\nMLproject\npython_env.yaml\nno-ca\n");

    // buildah, the same plan (the same Dockerfile text), under another prefix: the same environment.
    const other = { ...settings, target: { ...h.target, prefix: `${h.target.prefix}-buildah` } };
    const viaBuildah = await planStepImage({ service: h.service, settings: other }, dir);
    expect(viaBuildah.plan.steps.map((s) => s.dockerfile)).toEqual(plan.steps.map((s) => s.dockerfile.replaceAll(h.target.prefix, other.target.prefix)));
    const fromBuildah = await h.service.ensure(viaBuildah.plan);
    expect(run(fromBuildah.ref, "sh", "-c", "id -u; pwd; python -c 'import six; print(six.__version__)'; ls /mlflow/projects/code; test ! -e /tmp/parallels-ca.pem && echo no-ca")).toBe(fromBuildkit);

    // BuildKit's cached rebuild: the registry cache and its own store; nothing is downloaded again.
    const again = new ImageService({ description: "nothing", digest: async () => null }, new BuildctlBuilder());
    const relog: string[] = [];
    const t1 = Date.now();
    await again.ensure({ ...plan, steps: [plan.steps[0]!] }, { onLog: (t) => relog.push(t) }).catch((e: unknown) => e); // the store says "missing" after the build too
    console.log(`[images] BuildKit: cached rebuild of the environment image in ${((Date.now() - t1) / 1000).toFixed(1)} s`);
    expect(relog.join("")).toMatch(/CACHED/);
    expect(relog.join("")).not.toMatch(/Downloading six/);
  });
});
