// The executor contract (test/support/executor-contract.ts) against the Kubernetes executor on
// the real API server of the KWOK harness: every Job and pod spec the executor makes is accepted
// by the API server; the step's parameters become the fake pods' lifecycles (KWOK stands in for
// a kubelet running containers: `parallels.test/` annotations say how long a pod runs and which
// index fails with which code).
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll } from "vitest";
import { KubeApi, kubeconfigConnection } from "../../agent/src/executor/kubernetes/api";
import { createKubernetesExecutor } from "../../agent/src/executor/kubernetes/index";
import { jobName } from "../../agent/src/executor/kubernetes/names";
import { createLogger } from "../../agent/src/log";
import { parseIndexes } from "../../proto/indexes";
import type { WorkStart } from "../../proto/messages";
import { MlflowClient } from "../../proto/mlflow";
import { ROOT } from "../../scripts/local/control-plane";
import { executorContract } from "../support/executor-contract";
import { MLFLOW_START_TIMEOUT_MS, startMlflowServer, type MlflowTestServer } from "../support/mlflow-server";
import { deleteNamespace, newNamespace, podsOf, sharedCluster } from "./support";

const cluster = sharedCluster();
let server: MlflowTestServer;
let mlflow: MlflowClient;
let dir: string;
let repo: string;
let namespace: string;
let experimentId: string;
let commit: string;

/**
 * The fake pods' lifecycle from the step's own parameters (what the real step would do). The step
 * fails in partition `fail_index`; the fake fails a Job index, which on a partition retry is the
 * position of that partition in the retry's list (not in it: nothing fails).
 */
export function kwokKnobs(work: WorkStart): Record<string, string> {
  const p = work.node.parameters ?? {};
  const knobs: Record<string, string> = { "parallels.test/complete-delay": `${Number(p.seconds ?? 0)}s` };
  const code = Number(p.exit_code ?? 0);
  const failIndex = Number(p.fail_index ?? -1);
  const jobIndex = failIndex >= 0 && work.retry ? parseIndexes(work.retry.partitions).indexOf(failIndex) : failIndex;
  if (code !== 0 && !(failIndex >= 0 && jobIndex < 0)) {
    knobs["parallels.test/fail-index"] = jobIndex >= 0 ? String(jobIndex) : "always";
    knobs["parallels.test/exit-code"] = String(code);
    knobs["parallels.test/fail-delay"] = `${Number(p.seconds ?? 0)}s`;
  }
  return knobs;
}

beforeAll(async () => {
  server = await startMlflowServer();
  mlflow = new MlflowClient({ trackingUri: server.url });
  experimentId = (await mlflow.getOrCreateExperiment("contract")).experimentId;
  dir = mkdtempSync(join(tmpdir(), "parallels-contract-k8s-"));
  // The project comes from git on a cluster: the step fixture in a repository of its own.
  repo = join(dir, "step.git");
  cpSync(join(ROOT, "test/fixtures/projects/step"), repo, { recursive: true });
  const git = (...args: string[]) => execFileSync("git", ["-c", "user.email=t@example.test", "-c", "user.name=t", ...args], { cwd: repo });
  git("init", "-q");
  git("add", ".");
  git("commit", "-q", "-m", "step");
  commit = execFileSync("git", ["rev-parse", "HEAD"], { cwd: repo, encoding: "utf8" }).trim();
  namespace = await newNamespace(cluster, "contract");
}, MLFLOW_START_TIMEOUT_MS);

afterAll(async () => {
  if (namespace) await deleteNamespace(cluster, namespace);
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

let n = 0;
executorContract("kubernetes (Indexed Jobs on the KWOK harness)", () => {
  const i = n++;
  const clusterId = `contract-${i}-${Date.now().toString(36)}`;
  return {
    mlflow,
    experimentId,
    open: () =>
      createKubernetesExecutor({
        api: new KubeApi(kubeconfigConnection(cluster.kubeconfigPath)),
        namespace,
        clusterId,
        agentImage: "example.invalid/parallels-agent:test",
        mlflow,
        stepsTrackingUri: server.url,
        stateDir: join(dir, `state-${i}`),
        logger: createLogger({ level: process.env.AGENT_LOG ?? "silent" }),
        projectsRoot: dir,
        workNodeSelector: {},
        workTolerations: [],
        gpuTolerations: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }],
        imagePullSecrets: [],
        jobTtlSeconds: 600,
        maxPartitionRuns: 100,
        logsEverySeconds: 30,
        podAnnotations: kwokKnobs,
      }),
    node: (id, s, inputRunId) => ({
      id,
      project: { uri: `file://${repo}`, version: commit },
      image: "example.invalid/step:test",
      parameters: { seconds: s.seconds, exit_code: s.exitCode ?? 0, fail_index: s.failIndex ?? -1 },
      partition: { by: "broadcast", input: "data" },
      parallelism: s.partitions,
      inputs: { data: { run: inputRunId } },
      ...(s.timeoutSeconds ? { timeoutSeconds: s.timeoutSeconds } : {}),
    }),
    // One Job per attempt, one pod per index (no retries in these scenarios).
    duplicates: async (work) => {
      const jobs = JSON.parse(await cluster.kubectl(["-n", namespace, "get", "jobs", "-l", `parallels.io/cluster=${clusterId},parallels.io/node=${work.nodeId}`, "-o", "json"])) as {
        items: unknown[];
      };
      const pods = await podsOf(cluster, namespace, jobName(work.nodeId, work.nodeRunId, work.attempt));
      const perIndex = new Map<string, number>();
      for (const p of pods) {
        const index = p.metadata.annotations?.["batch.kubernetes.io/job-completion-index"] ?? "?";
        perIndex.set(index, (perIndex.get(index) ?? 0) + 1);
      }
      return Math.max(0, jobs.items.length - 1) + [...perIndex.values()].filter((c) => c > 1).length;
    },
  };
});
