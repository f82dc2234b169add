// The Kubernetes harness itself (scripts/k8s/harness.ts, stages.yaml) against the suite's shared
// cluster; the apiserver restart runs on a private cluster, as it would disturb other test files.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FAKE_POD_LOG_LINES, GPU_RESOURCE, type K8sCluster, startK8sCluster, WRITE_VERBS } from "../../scripts/k8s/harness";
import { condition, create, deleteNamespace, getJson, type Job, job, jobEnded, newNamespace, type Pod, podsOf, sharedCluster, waitFor } from "./support";
import { isAlive } from "../../scripts/k8s/processes";

const HERE = dirname(fileURLToPath(import.meta.url));
const c = sharedCluster();
let ns: string;

beforeAll(async () => {
  ns = await newNamespace(c, "harness");
});
afterAll(async () => {
  await deleteNamespace(c, ns);
});

describe("Jobs on kwok nodes", () => {
  it("an Indexed Job (completions 5, parallelism 2) completes, its pods on the CPU nodes, at most 2 at a time", async () => {
    const before = await c.metrics();
    await create(c, ns, job("indexed", { completionMode: "Indexed", completions: 5, parallelism: 2 }, { annotations: { "parallels.test/complete-delay": "1s" } }));
    let maxActive = 0;
    const done = await waitFor("job indexed to end", async () => {
      const j = await getJson<Job>(c, ns, "job", "indexed");
      maxActive = Math.max(maxActive, j.status.active ?? 0);
      return condition(j, "Complete") || condition(j, "Failed") ? j : undefined;
    });
    expect(condition(done, "Complete")).toBeDefined();
    expect(done.status).toMatchObject({ succeeded: 5, completedIndexes: "0-4" });
    expect(maxActive).toBeLessThanOrEqual(2);
    expect(maxActive).toBeGreaterThan(0);
    const pods = await podsOf(c, ns, "indexed");
    expect(pods.map((p) => p.metadata.annotations?.["batch.kubernetes.io/job-completion-index"]).sort()).toEqual(["0", "1", "2", "3", "4"]);
    for (const p of pods) {
      expect(p.status.phase).toBe("Succeeded");
      expect(p.spec.nodeName).toMatch(/^kwok-cpu-/); // the GPU node's taint keeps them off it
      expect(p.status.containerStatuses?.[0]?.state.terminated).toMatchObject({ exitCode: 0, reason: "Completed" });
    }
    // The harness counts the apiserver's requests: this test created one Job.
    const after = await c.metrics();
    expect(after.count({ resource: "jobs", verb: "POST" }) - before.count({ resource: "jobs", verb: "POST" })).toBeGreaterThanOrEqual(1);
    expect(after.count({ resource: "pods", verbs: WRITE_VERBS })).toBeGreaterThan(before.count({ resource: "pods", verbs: WRITE_VERBS }));
  });

  it("a pod runs for the delay of PARALLELS_TEST_DELAY on its first container; the annotation wins over it", async () => {
    const t0 = Date.now();
    await create(
      c,
      ns,
      job("env-delay", {}, { env: { PARALLELS_TEST_DELAY: "3s" } }),
      job("annotation-wins", {}, { env: { PARALLELS_TEST_DELAY: "10m" }, annotations: { "parallels.test/complete-delay": "1s" } }),
    );
    const envDelayed = await jobEnded(c, ns, "env-delay");
    expect(condition(envDelayed, "Complete")).toBeDefined();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(3_000);
    // 10 minutes would time this out: the annotation's 1 s was used.
    expect(condition(await jobEnded(c, ns, "annotation-wins", 60_000), "Complete")).toBeDefined();
  });

  it("a failing index with podFailurePolicy FailIndex and backoffLimitPerIndex gives failedIndexes and the reason", async () => {
    await create(
      c,
      ns,
      job(
        "fail-index",
        {
          completionMode: "Indexed",
          completions: 5,
          parallelism: 2,
          backoffLimit: undefined,
          backoffLimitPerIndex: 1,
          maxFailedIndexes: 2,
          podFailurePolicy: { rules: [{ action: "FailIndex", onExitCodes: { containerName: "main", operator: "In", values: [42] } }] },
        },
        { annotations: { "parallels.test/fail-index": "3", "parallels.test/exit-code": "42" } },
      ),
    );
    const done = await jobEnded(c, ns, "fail-index");
    expect(condition(done, "Failed")?.reason).toBe("FailedIndexes");
    expect(done.status).toMatchObject({ completedIndexes: "0-2,4", failedIndexes: "3" });
    const failed = (await podsOf(c, ns, "fail-index")).filter((p) => p.status.phase === "Failed");
    // FailIndex: index 3 failed once and was not retried despite backoffLimitPerIndex 1
    expect(failed.map((p) => p.metadata.annotations?.["batch.kubernetes.io/job-completion-index"])).toEqual(["3"]);
    expect(failed[0]!.status.containerStatuses?.[0]?.state.terminated).toMatchObject({ exitCode: 42, reason: "Error" });
  });

  it("a failed pod's exit code and reason (from env vars) appear in its container status; its other containers exit 0", async () => {
    await create(
      c,
      ns,
      job(
        "oom",
        {},
        {
          spec: {
            containers: [
              {
                name: "main",
                image: "example.invalid/step:test",
                env: [
                  { name: "PARALLELS_TEST_FAIL_INDEX", value: "always" },
                  { name: "PARALLELS_TEST_EXIT_CODE", value: "137" },
                  { name: "PARALLELS_TEST_FAIL_REASON", value: "OOMKilled" },
                ],
              },
              { name: "helper", image: "example.invalid/helper:test" },
            ],
          },
        },
      ),
    );
    const done = await jobEnded(c, ns, "oom");
    expect(condition(done, "Failed")?.reason).toBe("BackoffLimitExceeded");
    const [pod] = await podsOf(c, ns, "oom");
    expect(pod!.status.phase).toBe("Failed");
    const byName = Object.fromEntries((pod!.status.containerStatuses ?? []).map((s) => [s.name, s.state.terminated]));
    expect(byName.main).toMatchObject({ exitCode: 137, reason: "OOMKilled" });
    expect(byName.helper).toMatchObject({ exitCode: 0, reason: "Completed" });
  });

  it("a Job whose pods have an init container and a native sidecar completes, with plausible statuses on the way", async () => {
    await create(
      c,
      ns,
      job(
        "sidecar",
        {},
        {
          annotations: { "parallels.test/complete-delay": "3s" },
          spec: {
            initContainers: [
              { name: "fetch-inputs", image: "example.invalid/fetch:test" },
              { name: "uploader", image: "example.invalid/upload:test", restartPolicy: "Always" },
            ],
          },
        },
      ),
    );
    const running = await waitFor("the sidecar Job's pod Running", async () => {
      const [p] = await podsOf(c, ns, "sidecar");
      return p?.status.phase === "Running" ? p : undefined;
    });
    const init = Object.fromEntries((running.status.initContainerStatuses ?? []).map((s) => [s.name, s]));
    expect(init["fetch-inputs"]?.state.terminated).toMatchObject({ exitCode: 0, reason: "Completed" });
    expect(init.uploader).toMatchObject({ ready: true, started: true });
    expect(init.uploader?.state.running).toBeDefined();
    expect(running.status.containerStatuses?.[0]).toMatchObject({ name: "main", ready: true });
    expect(condition(running, "Initialized")).toBeDefined();

    const done = await jobEnded(c, ns, "sidecar");
    expect(condition(done, "Complete")).toBeDefined();
    const [pod] = await podsOf(c, ns, "sidecar");
    expect(pod!.status.phase).toBe("Succeeded");
    for (const s of [...(pod!.status.initContainerStatuses ?? []), ...(pod!.status.containerStatuses ?? [])]) {
      expect(s.state.terminated, s.name).toMatchObject({ exitCode: 0, reason: "Completed" });
    }
  });
});

describe("pods not owned by Jobs, logs, nodes", () => {
  it("a Helm chart's Deployment installs with --wait and its pod stays Running and Ready", async () => {
    expect((await c.helm(["version", "--short"])).trim()).toMatch(/^v3\.21\.4/);
    await c.helm(["install", "agent", join(HERE, "fixtures/long-running"), "-n", ns, "--wait", "--timeout", "60s"]);
    await new Promise((r) => setTimeout(r, 2_000)); // a Job pod would have ended by now
    const pods = (await getJson<{ items: Pod[] }>(c, ns, "pods", "-l", "app.kubernetes.io/instance=agent")).items;
    expect(pods).toHaveLength(1);
    expect(pods[0]!.status.phase).toBe("Running");
    expect(condition(pods[0]!, "Ready")).toBeDefined();
    expect((await c.kubectl(["-n", ns, "logs", "deploy/agent"])).trim().split("\n")).toEqual(FAKE_POD_LOG_LINES);
    await c.helm(["uninstall", "agent", "-n", ns, "--wait"]);
  });

  it("a pod's log is read through the API (GET …/pods/<name>/log), served by kwok in CRI format", async () => {
    await create(c, ns, job("logs", {}));
    expect(condition(await jobEnded(c, ns, "logs"), "Complete")).toBeDefined();
    const [pod] = await podsOf(c, ns, "logs");
    const res = await c.request(`/api/v1/namespaces/${ns}/pods/${pod!.metadata.name}/log?container=main`);
    expect(res.status).toBe(200);
    expect(res.text).toBe(FAKE_POD_LOG_LINES.map((l) => `${l}\n`).join(""));
  });

  it("a pod requesting a GPU with the toleration lands on the GPU node; without the toleration it never does", async () => {
    const gpuPod = (name: string, tolerate: boolean) => ({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name },
      spec: {
        restartPolicy: "Never",
        tolerations: tolerate ? [{ key: GPU_RESOURCE, operator: "Exists", effect: "NoSchedule" }] : [],
        containers: [{ name: "main", image: "example.invalid/train:test", resources: { limits: { [GPU_RESOURCE]: "1" } } }],
      },
    });
    const cpuPods = [0, 1, 2, 3].map((i) => ({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: `cpu-${i}` },
      spec: { restartPolicy: "Never", containers: [{ name: "main", image: "example.invalid/step:test" }] },
    }));
    await create(c, ns, gpuPod("gpu-tolerated", true), gpuPod("gpu-untolerated", false), ...cpuPods);
    const onGpu = await waitFor("gpu-tolerated Running", async () => {
      const p = await getJson<Pod>(c, ns, "pod", "gpu-tolerated");
      return p.status.phase === "Running" ? p : undefined;
    });
    expect(onGpu.spec.nodeName).toBe("kwok-gpu-0");
    for (const i of [0, 1, 2, 3]) {
      const p = await waitFor(`cpu-${i} scheduled`, async () => {
        const pod = await getJson<Pod>(c, ns, "pod", `cpu-${i}`);
        return pod.spec.nodeName ? pod : undefined;
      });
      expect(p.spec.nodeName).toMatch(/^kwok-cpu-/);
    }
    const refused = await waitFor("gpu-untolerated to be judged unschedulable", async () => {
      const p = await getJson<Pod>(c, ns, "pod", "gpu-untolerated");
      return p.status.conditions?.find((x) => x.type === "PodScheduled" && x.status === "False") ? p : undefined;
    });
    expect(refused.spec.nodeName).toBeUndefined();
    const scheduled = refused.status.conditions?.find((x) => x.type === "PodScheduled");
    expect(scheduled?.reason).toBe("Unschedulable");
    expect(scheduled?.message).toContain("1 node(s) had untolerated taint(s)");
    expect(scheduled?.message).toContain(`2 Insufficient ${GPU_RESOURCE}`);
  });
});

describe("credentials", () => {
  it("a TokenRequest token of a ServiceAccount with a namespaced Role creates Jobs there and is refused Secrets of kube-system", async () => {
    await create(
      c,
      ns,
      { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "agent" } },
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "Role",
        metadata: { name: "job-runner" },
        rules: [{ apiGroups: ["batch"], resources: ["jobs"], verbs: ["create", "get", "list", "watch", "delete"] }],
      },
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "RoleBinding",
        metadata: { name: "job-runner" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "job-runner" },
        subjects: [{ kind: "ServiceAccount", name: "agent", namespace: ns }],
      },
    );
    const tr = await c.request(`/api/v1/namespaces/${ns}/serviceaccounts/agent/token`, {
      body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { expirationSeconds: 600 } },
    });
    expect(tr.status).toBe(201);
    const token = tr.json<{ status: { token: string } }>().status.token;

    const made = await c.request(`/apis/batch/v1/namespaces/${ns}/jobs`, { token, body: job("by-agent", {}) });
    expect(made.status, made.text).toBe(201);
    const secrets = await c.request("/api/v1/namespaces/kube-system/secrets", { token });
    expect(secrets.status).toBe(403);
    expect(secrets.json<{ message: string }>().message).toBe(
      `secrets is forbidden: User "system:serviceaccount:${ns}:agent" cannot list resource "secrets" in API group "" in the namespace "kube-system"`,
    );
    // nor Jobs elsewhere
    expect((await c.request("/apis/batch/v1/namespaces/default/jobs", { token })).status).toBe(403);
    expect(condition(await jobEnded(c, ns, "by-agent"), "Complete")).toBeDefined();
  });
});

describe("the harness's processes", () => {
  it("every listener of the harness binds 127.0.0.1 (ss -ltunp), the controller-manager none", () => {
    const pids = c.pids();
    expect(Object.keys(pids).sort()).toEqual(["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"]);
    const byPid = new Map(Object.entries(pids).map(([name, pid]) => [pid, name]));
    const listeners: Array<{ name: string; local: string }> = [];
    for (const line of execFileSync("ss", ["-ltunpH"], { encoding: "utf8" }).split("\n")) {
      const local = line.trim().split(/\s+/)[4];
      for (const m of line.matchAll(/pid=(\d+)/g)) {
        const name = byPid.get(Number(m[1]));
        if (name && local) listeners.push({ name, local });
      }
    }
    for (const l of listeners) expect(l.local, `${l.name} listens on ${l.local}`).toMatch(/^127\.0\.0\.1:\d+$/);
    const ports = (name: string) =>
      listeners
        .filter((l) => l.name === name)
        .map((l) => Number(l.local.split(":")[1]))
        .sort();
    expect(ports("etcd")).toEqual([c.ports.etcdClient, c.ports.etcdPeer].sort());
    expect(ports("kube-apiserver")).toEqual([c.ports.apiserver]);
    expect(ports("kube-scheduler")).toEqual([c.ports.scheduler]);
    expect(ports("kwok")).toEqual([c.ports.kwok]);
    expect(ports("kube-controller-manager")).toEqual([]);
  });

  it("the kubeconfig verifies the CA and carries no secret but the token; the admin token is in no process's arguments", () => {
    const kubeconfig = readFileSync(c.kubeconfigPath, "utf8");
    expect(kubeconfig).toContain(`certificate-authority: ${JSON.stringify(c.caFile)}`);
    expect(kubeconfig).not.toContain("insecure-skip-tls-verify");
    for (const pid of Object.values(c.pids())) {
      expect(readFileSync(`/proc/${pid}/cmdline`, "utf8")).not.toContain(c.adminToken);
    }
  });
});

describe("a private cluster", () => {
  let own: K8sCluster;
  let again: K8sCluster | undefined;
  beforeAll(async () => {
    // One CPU node, and the components' budgets raised as benchmarks do.
    own = await startK8sCluster({
      name: "restart",
      binDir: c.binDir,
      nodes: [{ name: "solo", labels: { "parallels.test/pool": "cpu" }, allocatable: { cpu: "4", memory: "8Gi", pods: "20" } }],
      kubeApiQps: 50,
      kubeApiBurst: 100,
      concurrentJobSyncs: 7,
      schedulerApiQps: 60,
      schedulerApiBurst: 120,
      kwokPodWorkers: 8,
      log: () => {},
    });
  }, 180_000);
  afterAll(async () => {
    await again?.stop();
    await own?.stop();
  });

  it("survives a kube-apiserver restart in the middle of a Job, which still completes", async () => {
    const args = (component: string) => readFileSync(`/proc/${own.pids()[component]}/cmdline`, "utf8").split("\0");
    expect(args("kube-controller-manager")).toEqual(expect.arrayContaining(["--kube-api-qps=50", "--kube-api-burst=100", "--concurrent-job-syncs=7"]));
    expect(args("kube-scheduler")).toEqual(expect.arrayContaining(["--kube-api-qps=60", "--kube-api-burst=120"]));
    const kwokConfig = args("kwok")
      .find((a) => a.endsWith("kwok-configuration.yaml"))!
      .replace("--config=", "");
    expect(readFileSync(kwokConfig, "utf8")).toContain("podPlayStageParallelism: 8");
    const pns = await newNamespace(own, "restart");
    await create(own, pns, job("through-restart", { completionMode: "Indexed", completions: 4, parallelism: 2 }, { annotations: { "parallels.test/complete-delay": "3s" } }));
    await waitFor("a pod of the Job Running", async () => ((await podsOf(own, pns, "through-restart")).some((p) => p.status.phase === "Running") ? true : undefined));
    const { "kube-apiserver": before, ...others } = own.pids();
    // SIGTERM, and SIGKILL after its grace: the apiserver would drain watches for 60 s.
    const down = await own.restartApiServer();
    const { "kube-apiserver": after, ...othersAfter } = own.pids();
    expect(after).not.toBe(before);
    expect(othersAfter).toEqual(others);
    expect(down).toBeLessThan(60_000);
    const done = await jobEnded(own, pns, "through-restart", 120_000);
    expect(condition(done, "Complete"), JSON.stringify(done.status)).toBeDefined();
    expect(done.status).toMatchObject({ succeeded: 4, completedIndexes: "0-3" });
    // kwok read its KwokConfiguration without losing a default: it still serves the pods' logs.
    const [pod] = await podsOf(own, pns, "through-restart");
    expect((await own.request(`/api/v1/namespaces/${pns}/pods/${pod!.metadata.name}/log?container=main`)).text).toBe(FAKE_POD_LOG_LINES.map((l) => `${l}\n`).join(""));
    // The other components reconnected on their own: each is still the process that was started.
    expect(own.pids()).toEqual({ ...others, "kube-apiserver": after });
  });

  it("halt() stops every component and keeps the state; restart() brings the same cluster back: a Job stored before it is there, its pod still Running (nothing moved while it was down), and completes", async () => {
    const pns = await newNamespace(own, "halt");
    await create(own, pns, job("through-halt", {}, { annotations: { "parallels.test/complete-delay": "4s" } }));
    await waitFor("the Job's pod Running", async () => ((await podsOf(own, pns, "through-halt")).some((p) => p.status.phase === "Running") ? true : undefined));
    const before = Object.values(own.pids());
    expect(before).toHaveLength(5);
    await own.halt();
    for (const pid of before) expect(isAlive(pid), `pid ${pid}`).toBe(false);
    expect(own.pids()).toEqual({});
    await expect(own.kubectl(["get", "--raw", "/readyz"])).rejects.toThrow();
    // Longer than the pod's delay: nothing moves while the "kubelets" are down.
    await new Promise((r) => setTimeout(r, 5_000));
    const took = await own.restart();
    expect(took).toBeLessThan(60_000);
    expect(Object.keys(own.pids()).sort()).toEqual(["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"]);
    const [pod] = await podsOf(own, pns, "through-halt");
    expect(pod!.status.phase).toBe("Running");
    const done = await jobEnded(own, pns, "through-halt", 60_000);
    expect(condition(done, "Complete"), JSON.stringify(done.status)).toBeDefined();
    await expect(own.restart()).rejects.toThrow(/still running; halt\(\) it before restart\(\)/);
  });

  it("a start in a run dir first stops what a crashed run left running there", async () => {
    // As if the owner had died without stop(): its processes still run, its pid files remain.
    const left = Object.values(own.pids());
    expect(left).toHaveLength(5);
    again = await startK8sCluster({ name: "again", runDir: own.runDir, binDir: c.binDir, log: () => {} });
    for (const pid of left) expect(isAlive(pid), `leftover pid ${pid}`).toBe(false);
    expect(Object.values(again.pids()).some((pid) => left.includes(pid))).toBe(false);
    expect(JSON.parse(await again.kubectl(["get", "nodes", "-o", "json"])).items).toHaveLength(3); // the default nodes
    // A crash of the apiserver (SIGKILL): it comes back on the same port, with the same data.
    const apiserver = again.pids()["kube-apiserver"];
    await again.restartApiServer({ kill: true });
    expect(again.pids()["kube-apiserver"]).not.toBe(apiserver);
    expect(JSON.parse(await again.kubectl(["get", "nodes", "-o", "json"])).items).toHaveLength(3);
  });

  it("stop() ends exactly its processes; a second stop() is a no-op; a temp run dir is removed by its owner", async () => {
    const pids = Object.values(again!.pids());
    await again!.stop();
    for (const pid of pids) expect(isAlive(pid), `pid ${pid}`).toBe(false);
    expect(existsSync(own.runDir)).toBe(true); // `again` was given the dir: not its to remove
    await again!.stop();
    await own.stop(); // made the temp dir
    expect(existsSync(own.runDir)).toBe(false);
  });

  it("refuses to wipe a directory that is not a harness run dir", async () => {
    const dir = mkdtempSync(join(tmpdir(), "not-a-run-dir-"));
    writeFileSync(join(dir, "precious.txt"), "keep me");
    await expect(startK8sCluster({ runDir: dir, binDir: c.binDir, log: () => {} })).rejects.toThrow(/refusing to wipe/);
    expect(readFileSync(join(dir, "precious.txt"), "utf8")).toBe("keep me");
    rmSync(dir, { recursive: true });
  });
});
