// The executor contract (test/support/executor-contract.ts) against the local executor: real
// step processes, a real `mlflow server`.
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll } from "vitest";
import { createLocalExecutor } from "../../agent/src/executor/local/index";
import { MlflowClient } from "../../proto/mlflow";
import { ROOT } from "../../scripts/local/control-plane";
import { executorContract } from "../support/executor-contract";
import { MLFLOW_START_TIMEOUT_MS, startMlflowServer, type MlflowTestServer } from "../support/mlflow-server";

let server: MlflowTestServer;
let mlflow: MlflowClient;
let dir: string;
let experimentId: string;

beforeAll(async () => {
  server = await startMlflowServer();
  mlflow = new MlflowClient({ trackingUri: server.url });
  experimentId = (await mlflow.getOrCreateExperiment("contract")).experimentId;
  dir = mkdtempSync(join(tmpdir(), "parallels-contract-local-"));
  cpSync(join(ROOT, "test/fixtures/projects/step"), join(dir, "step"), { recursive: true });
}, MLFLOW_START_TIMEOUT_MS);

afterAll(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

let n = 0;
executorContract("local (step processes on this machine)", () => {
  // One executor state (and trace of step starts) per test; a restart reopens the same.
  const state = join(dir, `state-${n++}`);
  const trace = join(state, "trace.txt");
  return {
    mlflow,
    experimentId,
    open: async () =>
      createLocalExecutor({
        stateDir: state,
        trackingUri: server.url,
        mlflow,
        pythonBinDir: server.binDir,
        projectsRoot: dir,
        pollMs: 50,
        killGraceMs: 2_000,
        env: { ...process.env, STEP_TRACE_FILE: trace },
      }),
    node: (id, s, inputRunId) => ({
      id,
      project: { uri: join(dir, "step") },
      parameters: { seconds: s.seconds, exit_code: s.exitCode ?? 0, fail_index: s.failIndex ?? -1 },
      partition: { by: "broadcast", input: "data" },
      parallelism: s.partitions,
      inputs: { data: { run: inputRunId } },
      ...(s.timeoutSeconds ? { timeoutSeconds: s.timeoutSeconds } : {}),
    }),
    // A partition's process started more than once: its MLflow run id appears on more than one line.
    duplicates: async () => {
      if (!existsSync(trace)) return 0;
      const byRun = new Map<string, number>();
      for (const line of readFileSync(trace, "utf8").split("\n").filter(Boolean)) byRun.set(line.split(" ")[1]!, (byRun.get(line.split(" ")[1]!) ?? 0) + 1);
      return [...byRun.values()].filter((c) => c > 1).length;
    },
  };
});
