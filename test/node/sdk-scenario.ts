/**
 * The SDK's one scenario, run the same in three places (test/node/sdk.test.ts): in Node, inside
 * workerd as a Worker (test/workers/sdk-worker.ts) and in Chromium (test/browser/). It uses only
 * the SDK and Web-standard APIs, so esbuild bundles it for the Worker and the page as it is.
 *
 * Apply the DAG from its YAML text, submit a run, wait for it with progress, read the result, find
 * the run again by walking the run list a page of one at a time, and get an unknown run to see
 * that the error arrives as the SDK's one class with the API's code and status.
 */
import { isParallelsError, ParallelsClient } from "../../proto/client";

export interface ScenarioInput {
  baseUrl: string;
  token: string;
  dagYaml: string;
  params: Record<string, string>;
}

export interface ScenarioResult {
  dag: { name: string; version: number };
  runId: string;
  created: boolean;
  status: string;
  params: Record<string, unknown>;
  nodes: { nodeId: string; status: string; total: number; done: number; mlflowRunId: string | null }[];
  mlflowRunId: string | null;
  /** The run statuses `wait` reported, in order, repeats dropped. */
  progress: string[];
  /** The DAG's runs counted by iterating `runs.list` with pages of one. */
  runsOfDag: number;
  missing: { isParallelsError: boolean; name: string; code: string; status: number; message: string };
}

export async function sdkScenario(input: ScenarioInput): Promise<ScenarioResult> {
  const client = new ParallelsClient({ baseUrl: input.baseUrl, token: input.token });
  const dag = await client.dags.apply(input.dagYaml);
  const submitted = await client.runs.submit({ dag: dag.name, params: input.params });
  const progress: string[] = [];
  const run = await client.runs.wait(submitted.id, {
    intervalMs: 250,
    onProgress: (r) => {
      if (progress.at(-1) !== r.status) progress.push(r.status);
    },
  });
  let runsOfDag = 0;
  for await (const r of client.runs.list({ dag: dag.name, limit: 1 })) if (r.dag === dag.name) runsOfDag++;

  let missing: ScenarioResult["missing"] | undefined;
  try {
    await client.runs.get("no-such-run");
  } catch (e) {
    const err = e as { name: string; code: string; status: number; message: string };
    missing = { isParallelsError: isParallelsError(e), name: err.name, code: err.code, status: err.status, message: err.message };
  }
  return {
    dag: { name: dag.name, version: dag.version },
    runId: submitted.id,
    created: submitted.created,
    status: run.status,
    params: run.params,
    nodes: (run.nodes ?? []).map((n) => ({ nodeId: n.nodeId, status: n.status, total: n.partitions.total, done: n.partitions.done, mlflowRunId: n.mlflowRunId })),
    mlflowRunId: run.mlflowRunId,
    progress,
    runsOfDag,
    missing: missing!,
  };
}
