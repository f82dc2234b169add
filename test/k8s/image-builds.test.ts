// Image builds on the KWOK harness: the BuildKit and Kaniko build Jobs the agent makes, accepted
// by the real API server (and by Pod Security as each builder needs), and the Kubernetes executor
// building a step's image — registry check against a real registry on 127.0.0.1, a build Job per
// missing image, then the node's run Job in the built image. KWOK stands in for the kubelet that
// would run the build pod: the pod "succeeds" or "fails" as the test says, and the test pushes to
// the registry what the pod would have pushed.
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubeApi, KubeApiError, kubeconfigConnection } from "../../agent/src/executor/kubernetes/api";
import { buildJob, type BuildJobInput, DEFAULT_BUILDER_IMAGES } from "../../agent/src/executor/kubernetes/build-job";
import { KubernetesBuilder } from "../../agent/src/executor/kubernetes/builder";
import { createKubernetesExecutor, type KubernetesExecutor } from "../../agent/src/executor/kubernetes/index";
import { buildJobName, jobName } from "../../agent/src/executor/kubernetes/names";
import { POD_ATTEMPT_ANNOTATION } from "../../agent/src/executor/kubernetes/job-spec";
import { recorder, workFor } from "../../agent/src/executor/testing";
import { RegistryClient, RegistryImageStore } from "../../agent/src/images/registry";
import { ImageService } from "../../agent/src/images/service";
import { untarGz } from "../../agent/src/images/tar";
import { createLogger } from "../../agent/src/log";
import { DEFAULT_BASE_IMAGES } from "../../proto/images";
import { MlflowClient } from "../../proto/mlflow";
import { ROOT } from "../../scripts/local/control-plane";
import { startRegistry, type TestRegistry } from "../../scripts/images/registry";
import { ensureContainerTools } from "../../scripts/images/tools";
import { MLFLOW_START_TIMEOUT_MS, startMlflowServer, type MlflowTestServer } from "../support/mlflow-server";
import { pushTinyImage } from "../support/tiny-image";
import { deleteNamespace, getJson, type Job, newNamespace, sharedCluster, waitFor } from "./support";

const cluster = sharedCluster();
let api: KubeApi;
let server: MlflowTestServer;
let mlflow: MlflowClient;
let registry: TestRegistry;
let dir: string;
const namespaces: string[] = [];

beforeAll(async () => {
  ensureContainerTools((l) => console.log(l)); // docker-registry, from Debian, on first use
  api = new KubeApi(kubeconfigConnection(cluster.kubeconfigPath));
  server = await startMlflowServer();
  mlflow = new MlflowClient({ trackingUri: server.url });
  dir = mkdtempSync(join(tmpdir(), "parallels-k8s-builds-"));
  registry = await startRegistry(join(dir, "run"));
}, MLFLOW_START_TIMEOUT_MS);

afterAll(async () => {
  for (const ns of namespaces) await deleteNamespace(cluster, ns);
  await registry?.stop();
  await server?.stop();
  api?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function namespace(prefix: string, podSecurity?: "baseline" | "restricted"): Promise<string> {
  const ns = await newNamespace(cluster, prefix);
  namespaces.push(ns);
  if (podSecurity) await cluster.kubectl(["label", "namespace", ns, `pod-security.kubernetes.io/enforce=${podSecurity}`]);
  return ns;
}

const specInput = (ns: string, builder: "buildkit" | "kaniko"): BuildJobInput => ({
  name: buildJobName(`reg.example/ml/env:${builder}`),
  namespace: ns,
  labels: { "app.kubernetes.io/managed-by": "parallels-agent", "parallels.io/cluster": "c1", "parallels.io/image-build": "0123456789abcdef" },
  builder,
  builderImage: `docker.io/${DEFAULT_BUILDER_IMAGES[builder].replace(/^ghcr\.io\//, "ghcr.io/")}`,
  agentImage: "example.invalid/parallels-agent:test",
  destination: `${registry.host}/ml/env:0123456789abcdef0123456789abcdef`,
  cacheRepository: `${registry.host}/ml/cache`,
  context: { trackingUri: server.url, runId: "0123456789abcdef0123456789abcdef", path: "parallels/build/x.tar.gz", dir: "/workspace" },
  plainHttpRegistries: [registry.host],
  withCa: true,
  registrySecret: "registry-push",
  stepsMlflowSecret: "steps-mlflow",
  imagePullSecrets: ["registry-pull"],
  nodeSelector: {},
  tolerations: [],
  timeoutSeconds: 3600,
  ttlSecondsAfterFinished: 3600,
});

/** A pod made from a Job's template, checked by the API server (admission included) without being stored. */
async function dryRunPod(ns: string, job: ReturnType<typeof buildJob>): Promise<"admitted" | string> {
  try {
    await api.request("POST", `/api/v1/namespaces/${ns}/pods`, {
      query: { dryRun: "All" },
      body: { apiVersion: "v1", kind: "Pod", metadata: { name: `${job.metadata!.name}-x` }, spec: job.spec!.template.spec },
    });
    return "admitted";
  } catch (e) {
    if (e instanceof KubeApiError && e.status === 403) return e.message;
    throw e;
  }
}

describe("the build Jobs the agent makes", () => {
  it("BuildKit's and Kaniko's are accepted by the API server; Pod Security baseline admits Kaniko's pod and refuses BuildKit's (unconfined seccomp and AppArmor), restricted refuses both", async () => {
    const open = await namespace("builds");
    const baseline = await namespace("builds-baseline", "baseline");
    const restricted = await namespace("builds-restricted", "restricted");
    for (const builder of ["buildkit", "kaniko"] as const) {
      const job = buildJob(specInput(open, builder));
      // Stored for real (not a dry run): defaults applied, every field valid.
      const created = await api.request<{ spec: { template: { spec: { containers: { name: string; image: string; args?: string[] }[]; initContainers: { name: string }[] } } } }>(
        "POST",
        `/apis/batch/v1/namespaces/${open}/jobs`,
        { body: job },
      );
      expect(created.spec.template.spec.initContainers.map((c) => c.name)).toEqual(["context"]);
      expect(created.spec.template.spec.containers.map((c) => c.name)).toEqual(["build"]);
      expect(await dryRunPod(open, job)).toBe("admitted");
    }
    const buildkit = buildJob(specInput(baseline, "buildkit"));
    const kaniko = buildJob(specInput(baseline, "kaniko"));
    const refused = await dryRunPod(baseline, buildkit);
    expect(refused).toMatch(/violates PodSecurity "baseline:latest"/);
    expect(refused).toMatch(/seccompProfile/);
    expect(refused).toMatch(/appArmorProfile|apparmor/i);
    expect(await dryRunPod(baseline, kaniko)).toBe("admitted");
    expect(await dryRunPod(restricted, buildJob(specInput(restricted, "kaniko")))).toMatch(/violates PodSecurity "restricted:latest".*runAsNonRoot/s);
    expect(await dryRunPod(restricted, buildJob(specInput(restricted, "buildkit")))).toMatch(/violates PodSecurity "restricted:latest"/);

    // What each builder is told: the destination, the CA as a build secret, HTTP registries, the cache.
    const bk = buildkit.spec!.template.spec!.containers[0]!;
    expect(bk.command).toEqual(["buildctl-daemonless.sh"]);
    expect(bk.args).toEqual(
      expect.arrayContaining([
        `type=image,name=${registry.host}/ml/env:0123456789abcdef0123456789abcdef,push=true,registry.insecure=true`,
        "--secret",
        "id=parallels-ca,src=/workspace/.parallels/ca.pem",
        "--export-cache",
      ]),
    );
    expect(bk.env).toContainEqual({ name: "BUILDKITD_FLAGS", value: "--oci-worker-no-process-sandbox --config /workspace/.parallels/buildkitd.toml" });
    const ka = kaniko.spec!.template.spec!.containers[0]!;
    expect(ka.args).toEqual(
      expect.arrayContaining([
        `--destination=${registry.host}/ml/env:0123456789abcdef0123456789abcdef`,
        "--secret=id=parallels-ca,src=/workspace/.parallels/ca.pem",
        `--cache-repo=${registry.host}/ml/cache`,
        `--insecure-registry=${registry.host}`,
      ]),
    );
  });
});

describe("the Kubernetes executor builds a step's image (KWOK stands in for the kubelet of the build pod)", () => {
  let ns: string;
  let repo: string;
  let commit: string;
  let executor: KubernetesExecutor;
  let service: ImageService;
  /** What the next build pods do (KWOK knobs); the test pushes what a succeeding pod would push. */
  let buildKnobs: Record<string, string> = {};

  beforeAll(async () => {
    ns = await namespace("images");
    repo = join(dir, "project.git");
    cpSync(join(ROOT, "test/fixtures/projects/step"), repo, { recursive: true });
    writeFileSync(join(repo, "python_env.yaml"), 'python: "3.11"\nbuild_dependencies:\n  - pip\ndependencies:\n  - six==1.17.0\n');
    const git = (...args: string[]) => execFileSync("git", ["-c", "user.email=t@example.test", "-c", "user.name=t", ...args], { cwd: repo });
    git("init", "-q");
    git("add", ".");
    git("commit", "-q", "-m", "step with a python_env");
    commit = execFileSync("git", ["rev-parse", "HEAD"], { cwd: repo, encoding: "utf8" }).trim();
    const clusterId = `images-${Date.now().toString(36)}`;
    const builder = new KubernetesBuilder({
      api,
      namespace: ns,
      clusterId,
      builder: "buildkit",
      builderImage: "docker.io/moby/buildkit:v0.34.2-rootless",
      agentImage: "example.invalid/parallels-agent:test",
      mlflow,
      stepsTrackingUri: server.url,
      plainHttpRegistries: [registry.host],
      cacheRepository: `${registry.host}/k8s/cache`,
      caBundle: "/etc/ssl/certs/ca-certificates.crt",
      imagePullSecrets: [],
      nodeSelector: {},
      tolerations: [],
      timeoutSeconds: 600,
      ttlSecondsAfterFinished: 600,
      pollMs: 250,
      podAnnotations: () => buildKnobs,
    });
    service = new ImageService(new RegistryImageStore(new RegistryClient({ plainHttp: [registry.host] }), registry.host), builder);
    executor = await createKubernetesExecutor({
      api,
      namespace: ns,
      clusterId,
      agentImage: "example.invalid/parallels-agent:test",
      mlflow,
      stepsTrackingUri: server.url,
      stateDir: join(dir, "state"),
      logger: createLogger({ level: process.env.AGENT_LOG ?? "silent" }),
      projectsRoot: dir,
      workNodeSelector: {},
      workTolerations: [],
      gpuTolerations: [],
      imagePullSecrets: [],
      jobTtlSeconds: 600,
      maxPartitionRuns: 100,
      logsEverySeconds: 30,
      podAnnotations: () => ({ "parallels.test/complete-delay": "1s" }),
      images: { service, settings: { target: { registry: registry.host, prefix: "k8s" }, bases: { ...DEFAULT_BASE_IMAGES, registry: registry.host } } },
    });
  }, 120_000);

  afterAll(async () => {
    await executor?.close();
  });

  /** Plays the build pods: pushes each build Job's image while KWOK "runs" its pod. */
  function pushWhileBuilding(stop: AbortSignal): Promise<string[]> {
    return (async () => {
      const pushed: string[] = [];
      while (!stop.aborted) {
        const jobs = await getJson<{ items: (Job & { metadata: { annotations?: Record<string, string> } })[] }>(cluster, ns, "jobs", "-l", "parallels.io/image-build");
        for (const j of jobs.items) {
          const ref = j.metadata.annotations?.["parallels.io/image"];
          if (ref && !pushed.includes(ref)) {
            await pushTinyImage(registry.host, ref, j.metadata.name);
            pushed.push(ref);
          }
        }
        await new Promise((r) => setTimeout(r, 200));
      }
      return pushed;
    })();
  }

  it("a missing image: building (env, then project) → build Jobs that succeed → built → the run Job in the built image; the build log and context in the node's MLflow run", async () => {
    buildKnobs = { "parallels.test/complete-delay": "3s" };
    const stop = new AbortController();
    const pushing = pushWhileBuilding(stop.signal);
    const rec = recorder();
    const work = workFor({ id: "built", project: { uri: `file://${repo}`, version: commit }, parameters: { seconds: 0 } }, { dag: { name: "k8s-images", version: 1 } });
    await executor.start(work, rec);
    stop.abort();
    const pushed = await pushing;
    const done = await rec.waitFor("succeeded", 120_000).catch(() => rec.events.at(-1)!);
    expect(done.type, done.message).toBe("succeeded");

    const building = rec.events.filter((e) => e.type === "building");
    expect(building.map((e) => e.imageRef!.replace(/:[0-9a-f]{32}$/, ""))).toEqual([`${registry.host}/k8s/env`, `${registry.host}/k8s/project-parallels-test-step`]);
    expect(building[0]!.message).toMatch(/building since \d{4}-\d\d-\d\dT/);
    expect(building[0]!.mlflowRunId).toMatch(/^[0-9a-f]{32}$/);
    const built = rec.events.find((e) => e.type === "built")!;
    expect(rec.types().indexOf("built")).toBeLessThan(rec.types().indexOf("running"));
    expect(pushed).toEqual(building.map((e) => e.imageRef));
    expect(service.stats).toMatchObject({ checks: 2, hits: 0, builds: 2 });

    // One build Job per image, named from it; the run Job runs the project image by digest.
    for (const ref of pushed) {
      const job = await getJson<Job>(cluster, ns, "job", buildJobName(ref));
      expect(job.status.conditions?.some((c) => c.type === "Complete" && c.status === "True")).toBe(true);
    }
    const run = await getJson<{ spec: { template: { metadata: { annotations: Record<string, string> }; spec: { containers: { name: string; image: string }[] } } } }>(
      cluster,
      ns,
      "job",
      jobName(work.nodeId, work.nodeRunId, work.attempt),
    );
    const step = run.spec.template.spec.containers.find((c) => c.name === "step")!;
    expect(step.image).toBe(built.imageRef);
    expect(step.image).toMatch(new RegExp(`^${registry.host}/k8s/project-parallels-test-step:[0-9a-f]{32}@sha256:[0-9a-f]{64}$`));
    const podAttempt = JSON.parse(run.spec.template.metadata.annotations[POD_ATTEMPT_ANNOTATION]!);
    expect(podAttempt.project).toEqual({ dir: "/mlflow/projects/code" }); // the image holds the project

    // The node's MLflow run: the image it ran in, the build's log (KWOK's fake lines), the context as built.
    const runId = building[0]!.mlflowRunId!;
    const nodeRun = await mlflow.getRun(runId);
    expect(nodeRun.data.tags).toMatchObject({
      "mlflow.project.backend": "kubernetes",
      "mlflow.project.env": "docker",
      "mlflow.docker.image.uri": pushed[1],
      "mlflow.docker.image.id": step.image.split("@")[1],
    });
    const log = await mlflow.downloadArtifactText(runId, "parallels/build.log");
    expect(log).toContain(`parallels: build Job ${ns}/${buildJobName(pushed[0]!)} created (buildkit)`);
    expect(log).toContain("parallels k8s harness: kwok fakes this container");
    const contexts = (await mlflow.listArtifacts(runId, "parallels/build")).map((f) => f.path);
    expect(contexts).toHaveLength(2);
    const envTar = contexts.find((p) => p.endsWith(`/${buildJobName(pushed[0]!).slice(-16)}.tar.gz`))!;
    const files = Object.fromEntries(
      untarGz(await mlflow.downloadArtifact(runId, envTar))
        .filter((e) => e.data)
        .map((e) => [e.path, new TextDecoder().decode(e.data)]),
    );
    expect(files.Dockerfile).toContain(`FROM ${registry.host}/library/python:3.11-slim`);
    expect(files["env/parallels.dependencies.txt"]).toBe("six==1.17.0\n");
    expect(files[".parallels/ca.pem"]).toContain("BEGIN CERTIFICATE");
    expect(files[".parallels/buildkitd.toml"]).toContain(`[registry."${registry.host}"]`);

    // The same project again (another run): the registry check hits, no build Job, no building.
    const again = recorder();
    const work2 = workFor({ id: "built", project: { uri: `file://${repo}`, version: commit }, parameters: { seconds: 0 } }, { dag: { name: "k8s-images", version: 1 } });
    await executor.start(work2, again);
    expect((await again.waitFor("succeeded", 120_000)).type).toBe("succeeded");
    expect(again.types()).not.toContain("building");
    expect(service.stats).toMatchObject({ checks: 4, hits: 2, builds: 2 });
  });

  it("a build Job that fails fails the node with its reason and the end of the build's log; the retry builds again", async () => {
    writeFileSync(join(repo, "python_env.yaml"), 'python: "3.11"\nbuild_dependencies:\n  - pip\ndependencies:\n  - six==1.16.0\n');
    execFileSync("git", ["-c", "user.email=t@example.test", "-c", "user.name=t", "commit", "-q", "-am", "six 1.16"], { cwd: repo });
    const commit2 = execFileSync("git", ["rev-parse", "HEAD"], { cwd: repo, encoding: "utf8" }).trim();
    buildKnobs = { "parallels.test/complete-delay": "1s", "parallels.test/fail-index": "always", "parallels.test/fail-delay": "1s", "parallels.test/exit-code": "1" };
    const rec = recorder();
    const work = workFor({ id: "broken", project: { uri: `file://${repo}`, version: commit2 }, parameters: { seconds: 0 } }, { dag: { name: "k8s-images", version: 1 } });
    await executor.start(work, rec);
    const failed = await rec.waitFor("failed", 60_000);
    expect(failed.message).toMatch(/^building the image .*\/k8s\/env:[0-9a-f]{32} failed: the build Job build-env-[0-9a-f]{16} failed: its container build exited with 1/);
    expect(failed.message).toContain("last lines of the build log (parallels/build.log):");
    expect(failed.message).toContain("parallels k8s harness: kwok fakes this container");
    expect(await getJson<Job>(cluster, ns, "job", jobName(work.nodeId, work.nodeRunId, work.attempt)).catch(() => null)).toBeNull(); // no run Job

    // The node's retry (attempt 2): the failed build Job makes way for a new one, which succeeds this time.
    buildKnobs = { "parallels.test/complete-delay": "2s" };
    const stop = new AbortController();
    const pushing = pushWhileBuilding(stop.signal);
    const retry = recorder();
    await executor.start({ ...work, attempt: 2 }, retry);
    stop.abort();
    await pushing;
    expect((await retry.waitFor("succeeded", 120_000)).type).toBe("succeeded");
    expect(retry.events.filter((e) => e.type === "building")).toHaveLength(2);
    await waitFor("the retried build Job to be complete", async () => {
      const job = await getJson<Job>(cluster, ns, "job", buildJobName(retry.events.find((e) => e.type === "building")!.imageRef!));
      return job.status.conditions?.some((c) => c.type === "Complete" && c.status === "True") ? job : undefined;
    });
  });
});
