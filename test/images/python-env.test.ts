// Real builds of MLflow's sklearn_elasticnet_wine example (its MLproject and python_env.yaml as
// the fixtures hold them; the code is a stand-in, test/fixtures/images/elasticnet/train.py): the
// generated Dockerfile built with buildah (pip through this machine's proxy, its CA given as the
// build's extra CA bundle), pushed to a real registry on 127.0.0.1, its digest checked through the
// registry API, the local copy removed, then the entry point run by the local executor with
// `--containers podman` in the image pulled back, against a real `mlflow server` — and compared
// with what `mlflow run` logs for the same project in the same image.
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MANIFEST_ACCEPT } from "../../agent/src/images/registry";
import { ImageService } from "../../agent/src/images/service";
import { RegistryImageStore } from "../../agent/src/images/registry";
import { createLocalExecutor, type LocalExecutor } from "../../agent/src/executor/local/index";
import { planStepImage, type StepImages } from "../../agent/src/executor/shared/images";
import { recorder, workFor } from "../../agent/src/executor/testing";
import { MlflowClient } from "../../proto/mlflow/index";
import { MLFLOW_START_TIMEOUT_MS, startMlflowServer, type MlflowTestServer } from "../support/mlflow-server";
import { type ImagesHarness, imagesHarness, suite, testBases } from "./support";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const EXAMPLE = join(ROOT, "test/fixtures/mlflow/examples/sklearn_elasticnet_wine");

let server: MlflowTestServer;
let mlflow: MlflowClient;
let h: ImagesHarness;
let project: string;
let images: StepImages;
let imageRef = "";
const executors: LocalExecutor[] = [];
const cleanup: string[] = [];

beforeAll(async () => {
  server = await startMlflowServer();
  mlflow = new MlflowClient({ trackingUri: server.url, retry: { maxRetries: 2, baseDelayMs: 50 } });
  h = imagesHarness(`wine-${process.pid}`);
  project = mkdtempSync(join(tmpdir(), "parallels-wine-"));
  cleanup.push(project);
  for (const f of ["MLproject", "python_env.yaml"]) copyFileSync(join(EXAMPLE, f), join(project, f));
  copyFileSync(join(ROOT, "test/fixtures/images/elasticnet/train.py"), join(project, "train.py"));
  images = { service: h.service, settings: { target: h.target, bases: testBases() } };
}, MLFLOW_START_TIMEOUT_MS);

afterAll(async () => {
  await Promise.all(executors.map((e) => e.close()));
  await server?.stop();
  h?.cleanup();
  for (const d of cleanup) rmSync(d, { recursive: true, force: true });
});

const skopeo = (...args: string[]) => execFileSync("skopeo", args, { env: h.state.env, encoding: "utf8" });
const podman = (...args: string[]) => execFileSync("podman", args, { env: h.state.env, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });

describe("sklearn_elasticnet_wine (python_env) built with buildah", () => {
  it("builds the environment image and the project image once, pushes both, and the registry answers their digests", async () => {
    const { plan } = await planStepImage(images, project);
    expect(plan.steps.map((s) => s.kind)).toEqual(["env", "project"]);
    const log: string[] = [];
    const t0 = Date.now();
    const ensured = await h.service.ensure(plan, { onLog: (t) => log.push(t) });
    console.log(`[images] wine: env + project images built and pushed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    expect(h.service.stats).toMatchObject({ checks: 2, hits: 0, builds: 2 });
    const text = log.join("");
    // pip ran in the build, through the proxy, with the CA given as the build's secret.
    expect(text).toMatch(/Successfully installed .*scikit-learn-1\.4\.2/);
    expect(text).toContain("--secret id=parallels-ca,src=");
    imageRef = ensured.ref;
    expect(ensured.ref).toBe(`${plan.ref}@${ensured.digest}`);

    // The registry API: HEAD with the OCI and Docker media types answers the digest skopeo sees.
    for (const step of plan.steps) {
      const [name, tag] = step.ref.slice(suite().registry.length + 1).split(":") as [string, string];
      const head = await fetch(`http://${suite().registry}/v2/${name}/manifests/${tag}`, { method: "HEAD", headers: { accept: MANIFEST_ACCEPT } });
      expect(head.status).toBe(200);
      expect(head.headers.get("content-type")).toBe("application/vnd.oci.image.manifest.v1+json");
      const inspected = JSON.parse(skopeo("inspect", "--tls-verify=false", `docker://${step.ref}`)) as { Digest: string };
      expect(head.headers.get("docker-content-digest")).toBe(inspected.Digest);
      expect(await h.registry.manifestDigest(step.ref)).toBe(inspected.Digest);
    }
    expect(ensured.digest).toBe(await h.registry.manifestDigest(plan.ref));

    // What the image is: our user, MLflow's project folder as the working directory, no CA left in it.
    const config = JSON.parse(skopeo("inspect", "--tls-verify=false", "--config", `docker://${plan.ref}`)) as { config: { User: string; WorkingDir: string; Env: string[] } };
    expect(config.config.User).toBe("10001:10001");
    expect(config.config.WorkingDir).toBe("/mlflow/projects/code/");
    expect(config.config.Env).toContain("VIRTUAL_ENV=/opt/mlflow-env");
    const inside = podman(
      "run",
      "--rm",
      "--network=none",
      plan.ref,
      "sh",
      "-c",
      "id -u; ls /mlflow/projects/code; test ! -e /tmp/parallels-ca.pem && test ! -e /run/secrets/parallels-ca && echo no-ca; python -c 'import sklearn; print(sklearn.__version__)'",
    );
    expect(inside.split("\n")).toEqual(["10001", "MLproject", "python_env.yaml", "train.py", "no-ca", "1.4.2", ""]);
  });

  it("a second build with no change takes no build step: the registry check hits (a fresh service, as after an agent restart)", async () => {
    const again = new ImageService(new RegistryImageStore(h.registry, suite().registry), h.builder);
    const { plan } = await planStepImage({ ...images, service: again }, project);
    const t0 = Date.now();
    const ensured = await again.ensure(plan);
    console.log(`[images] wine: the registry check of two images took ${Date.now() - t0} ms`);
    expect(again.stats).toMatchObject({ checks: 2, hits: 2, builds: 0 });
    expect(ensured.ref).toBe(imageRef);
  });

  it("runs the entry point in the image pulled back from the registry (local executor, --containers podman) and logs what `mlflow run` logs", async () => {
    expect(imageRef).not.toBe("");
    // The local copies go: the run must pull the image from the registry.
    podman("rmi", "--all", "--force");
    expect(podman("images", "--quiet").trim()).toBe("");

    const ex = createLocalExecutor({
      stateDir: mkdtempSync(join(tmpdir(), "parallels-wine-agent-")),
      trackingUri: server.url,
      mlflow,
      pollMs: 100,
      projectsRoot: tmpdir(),
      containers: { ...images, env: h.state.env, plainHttp: [suite().registry] },
    });
    executors.push(ex);
    cleanup.push(ex.context.stateDir);
    const rec = recorder();
    const work = workFor({ id: "wine", project: { uri: project }, parameters: { alpha: 0.4, l1_ratio: 0.2 } }, { dag: { name: "wine-images", version: 1 } });
    await ex.start(work, rec);
    const end = await rec.waitFor("succeeded", 300_000).catch(() => rec.events.at(-1)!);
    expect(end.type, end.message).toBe("succeeded");
    // In the registry already: the node never waited for a build.
    expect(rec.types()).not.toContain("building");
    const runId = rec.events[0]!.mlflowRunId!;
    const ours = await mlflow.getRun(runId);
    // Pulled back by digest (the run names the image so): exactly that image is here again.
    expect(podman("images", "--digests", "--format", "{{.Repository}}@{{.Digest}}").trim()).toBe(imageRef.replace(/:[0-9a-f]{32}@/, "@"));

    // The reference: `mlflow run` of the same project in the same image, against the same server.
    const experiment = `wine-mlflow-run-${process.pid}`;
    const out = podman(
      "run",
      "--rm",
      "--network=host",
      "-e",
      `MLFLOW_TRACKING_URI=${server.url}`,
      imageRef,
      "mlflow",
      "run",
      "/mlflow/projects/code",
      "--env-manager",
      "local",
      "--experiment-name",
      experiment,
      "-P",
      "alpha=0.4",
      "-P",
      "l1_ratio=0.2",
    );
    expect(out).toContain("RMSE");
    const exp = await mlflow.getExperimentByName(experiment);
    const [reference] = await mlflow.searchAllRuns({ experimentIds: [exp!.experimentId] });
    expect(reference).toBeDefined();

    expect(ours.info.status).toBe("FINISHED");
    expect(ours.data.params).toEqual(reference!.data.params);
    expect(ours.data.params).toEqual({ alpha: "0.4", l1_ratio: "0.2" });
    const metrics = (r: typeof ours) => Object.fromEntries(r.data.metrics.map((m) => [m.key, m.value]));
    expect(Object.keys(metrics(ours)).sort()).toEqual(["mae", "r2", "rmse"]);
    expect(metrics(ours)).toEqual(metrics(reference!)); // same code, same environment: the same numbers
    // Tags: the step's own and MLflow's project tags are the same; where and how each launcher ran
    // differs by design — the source (the host's folder here, the image's folder there), the
    // user, the run's name, its parent, the image (`mlflow run` ran inside it, we ran it), ours.
    const differs = new Set(["mlflow.source.name", "mlflow.user", "mlflow.runName", "mlflow.parentRunId", "mlflow.project.env", "mlflow.docker.image.uri", "mlflow.docker.image.id"]);
    const comparable = (r: typeof ours) => Object.fromEntries(Object.entries(r.data.tags).filter(([k]) => !differs.has(k) && !k.startsWith("parallels.")));
    expect(comparable(ours)).toEqual(comparable(reference!));
    expect(comparable(ours)).toMatchObject({ estimator: "ElasticNet", "mlflow.source.type": "PROJECT", "mlflow.project.entryPoint": "main", "mlflow.project.backend": "local" });
    // Ours says which image it ran in, as `mlflow run` does for a docker_env project.
    expect(ours.data.tags).toMatchObject({ "mlflow.project.env": "docker", "mlflow.docker.image.uri": imageRef.split("@")[0], "mlflow.docker.image.id": imageRef.split("@")[1] });
    expect(await mlflow.downloadArtifactText(runId, "parallels/logs/stdout.log")).toContain("RMSE");
  });
});
