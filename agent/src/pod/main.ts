/**
 * `parallels-agent pod <fetch|upload|build-context>`: the agent's programs inside a work pod (the
 * Kubernetes executor's Job runs them from the agent's own image), and in an image build pod. They read their attempt from
 * `PARALLELS_POD_ATTEMPT`, the index from `JOB_COMPLETION_INDEX` (set by Kubernetes in Indexed
 * Jobs; on a partition retry it names the partition through the attempt's `ran`) and MLflow's credentials from MLflow's variables (the Secret the chart names for steps).
 */
import { readFileSync } from "node:fs";
import { mlflowClient } from "../mlflow";
import { installProxy, proxyFromEnv } from "../proxy";
import { PodAttemptSchema, partitionOfIndex, type PodAttempt } from "../executor/kubernetes/pod-attempt";
import { POD_ATTEMPT_ENV, POD_DIR, POD_DIR_ENV, podPaths } from "../executor/kubernetes/pod-layout";
import { buildContextOf, fetchBuildContext } from "./build-context";
import { fetchForIndex } from "./fetch";
import { uploadUntilStepEnds } from "./upload";

const say = (line: string) => process.stderr.write(`parallels-agent pod: ${line}\n`);

function attemptOf(env: NodeJS.ProcessEnv): PodAttempt {
  const raw = env[POD_ATTEMPT_ENV];
  if (!raw) throw new Error(`${POD_ATTEMPT_ENV} is not set: this program runs inside a work pod made by the agent`);
  const parsed = PodAttemptSchema.safeParse(JSON.parse(raw));
  if (!parsed.success) throw new Error(`${POD_ATTEMPT_ENV} is not valid: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  return parsed.data;
}

/** This pod's partition of the node: its Job index (`JOB_COMPLETION_INDEX`) through the attempt's `ran` on a partition retry. */
function partitionOf(attempt: PodAttempt, env: NodeJS.ProcessEnv): number {
  return partitionOfIndex(attempt.ran, Number(env.JOB_COMPLETION_INDEX ?? "0"));
}

/** `MLFLOW_RUN_ID` from the env file fetch wrote. */
function runIdOf(root: string): string {
  const m = /^MLFLOW_RUN_ID='([^']*)'$/m.exec(readFileSync(podPaths(root).env, "utf8"));
  if (!m) throw new Error(`${podPaths(root).env} has no MLFLOW_RUN_ID: did the fetch container run?`);
  return m[1]!;
}

export async function podMain(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const [what] = args;
  try {
    // A pod whose way to MLflow is a proxy (variables injected by the site) follows it, as the agent does.
    const proxy = proxyFromEnv(env);
    if (proxy.problems.length) throw new Error(proxy.problems.join("; "));
    if (proxy.settings) await installProxy(proxy.settings);
    if (what === "build-context") {
      const c = buildContextOf(env);
      const n = await fetchBuildContext(mlflowClient(c.trackingUri, env), c);
      say(`build context ready in ${c.dir}: ${n} entries from ${c.path} of MLflow run ${c.runId}`);
      return 0;
    }
    const attempt = attemptOf(env);
    const root = env[POD_DIR_ENV] || POD_DIR;
    const mlflow = mlflowClient(attempt.trackingUri, env);
    if (what === "fetch") {
      const index = partitionOf(attempt, env);
      const vars = await fetchForIndex(mlflow, attempt, index, root);
      say(`partition ${index}: inputs and project ready; logs to MLflow run ${vars.MLFLOW_RUN_ID}`);
      return 0;
    }
    if (what === "upload") {
      const stop = new AbortController();
      process.once("SIGTERM", () => stop.abort());
      const outcome = await uploadUntilStepEnds({ mlflow, attempt, runId: runIdOf(root), index: partitionOf(attempt, env), root, signal: stop.signal, log: say });
      say("stepExitCode" in outcome ? `the step exited with ${outcome.stepExitCode}; logs and outputs uploaded` : "stopped before the step ended; logs uploaded");
      return 0;
    }
    say(`unknown program ${JSON.stringify(what)}: expected fetch, upload or build-context`);
    return 2;
  } catch (err) {
    say(`${what} failed: ${(err as Error).message}`);
    return 1;
  }
}
