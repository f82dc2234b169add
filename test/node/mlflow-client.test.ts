// proto/mlflow's client against a real `mlflow server` (SQLite, proxied artifacts) on 127.0.0.1.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  chunkBatch,
  dagRunName,
  isMlflowApiError,
  isMlflowClientError,
  isMlflowNetworkError,
  isResourceDoesNotExist,
  MLFLOW_LIMITS,
  MLFLOW_TAGS,
  MlflowApiError,
  MlflowClient,
  projectRunTags,
  type FetchLike,
} from "../../proto/mlflow/index";
import { MLFLOW_START_TIMEOUT_MS, startMlflowServer, type MlflowTestServer } from "../support/mlflow-server";

let server: MlflowTestServer;
let mlflow: MlflowClient;
/** Every request the client sent: method, URL and JSON body (if any). */
let sent: { method: string; url: string; json?: Record<string, unknown> }[] = [];

const recordingFetch: FetchLike = async (input, init) => {
  const isJson = (init?.headers as Record<string, string> | undefined)?.["Content-Type"] === "application/json";
  const json = isJson && typeof init?.body === "string" ? (JSON.parse(init.body) as Record<string, unknown>) : undefined;
  sent.push({ method: init?.method ?? "GET", url: input, ...(json ? { json } : {}) });
  return fetch(input, init);
};

beforeAll(async () => {
  server = await startMlflowServer();
  console.log(`mlflow server up in ${server.startupMs} ms at ${server.url}`);
  mlflow = new MlflowClient({ trackingUri: server.url, fetch: recordingFetch, retry: { maxRetries: 2, baseDelayMs: 50 } });
}, MLFLOW_START_TIMEOUT_MS);

afterAll(async () => {
  await server?.stop();
});

const uniq = (p: string) => `${p}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;

describe("experiments", () => {
  it("get-or-create is idempotent and safe when callers race", async () => {
    const name = uniq("race");
    const all = await Promise.all(Array.from({ length: 6 }, () => mlflow.getOrCreateExperiment(name)));
    const ids = new Set(all.map((e) => e.experimentId));
    expect(ids.size).toBe(1);
    expect(all[0]!.name).toBe(name);
    expect(all[0]!.lifecycleStage).toBe("active");
    expect(all[0]!.artifactLocation).toMatch(/^mlflow-artifacts:/);
    const again = await mlflow.getOrCreateExperiment(name);
    expect(again.experimentId).toBe(all[0]!.experimentId);
    expect(await mlflow.getExperimentByName(uniq("absent"))).toBeUndefined();
  });

  it("a create that loses the race (RESOURCE_ALREADY_EXISTS) returns the winner's experiment", async () => {
    const name = uniq("lost-race");
    const winner = await mlflow.getOrCreateExperiment(name);
    // The loser looked before the winner created it: its first get-by-name answers 404.
    let lied = false;
    const calls: string[] = [];
    const loser = new MlflowClient({
      trackingUri: server.url,
      fetch: async (url, init) => {
        calls.push(url.replace(server.url, ""));
        if (!lied && url.includes("/experiments/get-by-name")) {
          lied = true;
          return new Response(JSON.stringify({ error_code: "RESOURCE_DOES_NOT_EXIST", message: "not yet" }), { status: 404 });
        }
        return fetch(url, init);
      },
    });
    const got = await loser.getOrCreateExperiment(name);
    expect(got.experimentId).toBe(winner.experimentId);
    expect(calls.map((c) => c.split("?")[0])).toEqual([
      "/api/2.0/mlflow/experiments/get-by-name",
      "/api/2.0/mlflow/experiments/create", // answered 400 RESOURCE_ALREADY_EXISTS by the real server
      "/api/2.0/mlflow/experiments/get-by-name",
    ]);
  });

  it("refuses a deleted experiment with a clear error", async () => {
    const name = uniq("deleted");
    const { experimentId } = await mlflow.getOrCreateExperiment(name);
    const res = await fetch(`${server.url}/api/2.0/mlflow/experiments/delete`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ experiment_id: experimentId }),
    });
    expect(res.status).toBe(200);
    const err = await mlflow.getOrCreateExperiment(name).catch((e: unknown) => e);
    expect(isMlflowClientError(err, "EXPERIMENT_DELETED")).toBe(true);
    expect(String(err)).toContain(name);
  });
});

describe("runs", () => {
  let experimentId: string;
  beforeAll(async () => {
    experimentId = (await mlflow.getOrCreateExperiment(uniq("runs"))).experimentId;
  });

  it("creates a parent run and a child run with MLflow's project tags", async () => {
    const start = Date.now() - 1000;
    const parent = await mlflow.createRun({
      experimentId,
      runName: dagRunName("wordcount", "r1"),
      startTime: start,
      tags: { [MLFLOW_TAGS.user]: "alice", "parallels.dag": "wordcount" },
    });
    expect(parent.info.runName).toBe("wordcount-r1");
    expect(parent.info.status).toBe("RUNNING");
    expect(parent.info.startTime).toBe(start);
    expect(parent.info.endTime).toBeUndefined();
    expect(parent.info.runId).toMatch(/^[0-9a-f]{32}$/);

    const tags = projectRunTags({
      sourceName: "https://github.com/example/wordcount#split",
      entryPoint: "main",
      gitCommit: "0123456789abcdef0123456789abcdef01234567",
      gitRepoUrl: "https://user:secret@github.com/example/wordcount",
      env: "docker",
      backend: "kubernetes",
      user: "alice",
    });
    const child = await mlflow.createRun({ experimentId, runName: "split", parentRunId: parent.info.runId, tags });
    const got = await mlflow.getRun(child.info.runId);
    expect(got.info.runName).toBe("split");
    expect(got.info.userId).toBe("alice");
    expect(got.data.tags).toMatchObject({
      "mlflow.parentRunId": parent.info.runId,
      "mlflow.runName": "split",
      "mlflow.user": "alice",
      "mlflow.source.type": "PROJECT",
      "mlflow.source.name": "https://github.com/example/wordcount#split",
      "mlflow.source.git.commit": "0123456789abcdef0123456789abcdef01234567",
      "mlflow.source.git.repoURL": "https://github.com/example/wordcount",
      "mlflow.project.entryPoint": "main",
      "mlflow.project.env": "docker",
      "mlflow.project.backend": "kubernetes",
    });
    expect(got.info.artifactUri).toBe(`mlflow-artifacts:/${experimentId}/${child.info.runId}/artifacts`);

    await mlflow.setTag(child.info.runId, "mlflow.docker.image.uri", "registry.local/wc:0123456");
    await mlflow.setTags(child.info.runId, { a: "1", b: 2, c: true });
    await mlflow.deleteTag(child.info.runId, "a");
    const tagged = await mlflow.getRun(child.info.runId);
    expect(tagged.data.tags["mlflow.docker.image.uri"]).toBe("registry.local/wc:0123456");
    expect(tagged.data.tags).toMatchObject({ b: "2", c: "true" });
    expect(tagged.data.tags.a).toBeUndefined();
  });

  it("ends runs FINISHED or FAILED with an end time, and can leave an ended run alone", async () => {
    const ok = await mlflow.createRun({ experimentId, runName: "ok" });
    const bad = await mlflow.createRun({ experimentId, runName: "bad" });
    const end = Date.now();
    const okInfo = await mlflow.terminateRun(ok.info.runId, "FINISHED", { endTime: end });
    expect(okInfo).toMatchObject({ status: "FINISHED", endTime: end });
    await mlflow.terminateRun(bad.info.runId, "FAILED");
    const badRun = await mlflow.getRun(bad.info.runId);
    expect(badRun.info.status).toBe("FAILED");
    expect(badRun.info.endTime).toBeGreaterThanOrEqual(end);

    // Like MLflow's project runner: a run its own code already ended keeps its status.
    const kept = await mlflow.terminateRun(ok.info.runId, "FAILED", { unlessTerminated: true });
    expect(kept.status).toBe("FINISHED");
    expect((await mlflow.getRun(ok.info.runId)).info).toMatchObject({ status: "FINISHED", endTime: end });

    const killed = await mlflow.updateRun(bad.info.runId, { status: "KILLED", endTime: end + 1, runName: "renamed" });
    expect(killed).toMatchObject({ status: "KILLED", endTime: end + 1, runName: "renamed" });
    const err = await mlflow.terminateRun(ok.info.runId, "RUNNING").catch((e: unknown) => e);
    expect(isMlflowClientError(err, "INVALID_ARGUMENT")).toBe(true);
  });

  it("logs params, tags and metrics over MLflow's batch limits in compliant chunks", async () => {
    const run = await mlflow.createRun({ experimentId, runName: "batch" });
    const runId = run.info.runId;
    const params: Record<string, string | number> = {};
    for (let i = 0; i < 250; i++) params[`p${String(i).padStart(3, "0")}`] = i;
    params.long = "x".repeat(7000); // over 6000: truncated as MLflow's server would
    params.astral = "😀".repeat(6000); // 6000 code points (12000 UTF-16 units): fits, not cut
    const tags: Record<string, string> = {};
    for (let i = 0; i < 150; i++) tags[`t${i}`] = `v${i}`;
    tags.longTag = "y".repeat(9000);
    const metrics = Array.from({ length: 2500 }, (_, i) => ({ key: `m${i % 25}`, value: i / 7, step: Math.floor(i / 25), timestamp: 1_700_000_000_000 + i }));
    metrics.push({ key: "nan", value: Number.NaN, step: 0, timestamp: 1_700_000_000_000 });

    sent = [];
    await mlflow.logBatch(runId, { params, tags, metrics });
    const batches = sent.filter((s) => s.url.endsWith("/runs/log-batch")).map((s) => s.json!);
    expect(batches.length).toBeGreaterThanOrEqual(6);
    for (const b of batches) {
      const n = (k: string) => (b[k] as unknown[]).length;
      expect(n("params")).toBeLessThanOrEqual(MLFLOW_LIMITS.maxParamsPerBatch);
      expect(n("tags")).toBeLessThanOrEqual(MLFLOW_LIMITS.maxTagsPerBatch);
      expect(n("metrics")).toBeLessThanOrEqual(MLFLOW_LIMITS.maxMetricsPerBatch);
      expect(n("params") + n("tags") + n("metrics")).toBeLessThanOrEqual(MLFLOW_LIMITS.maxEntitiesPerBatch);
      expect(new TextEncoder().encode(JSON.stringify(b)).length).toBeLessThanOrEqual(MLFLOW_LIMITS.maxRequestBytes);
    }

    const got = await mlflow.getRun(runId);
    expect(Object.keys(got.data.params)).toHaveLength(252);
    expect(got.data.params.p249).toBe("249");
    expect(got.data.params.long).toBe("x".repeat(6000));
    expect(got.data.params.astral).toBe(params.astral);
    expect(got.data.tags.t149).toBe("v149");
    expect(got.data.tags.longTag).toBe("y".repeat(8000));
    expect(new Set(got.data.metrics.map((m) => m.key)).size).toBe(26);
    const m3 = await mlflow.getMetricHistory(runId, "m3");
    expect(m3).toHaveLength(100);
    expect(m3.map((m) => m.step).sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect((await mlflow.getMetricHistory(runId, "nan"))[0]!.value).toBeNaN();

    // Params are write-once: the same value again is fine, another value is the server's error.
    await mlflow.logParams(runId, { p001: 1 });
    const changed = await mlflow.logParams(runId, { p001: 2 }).catch((e: unknown) => e);
    expect(isMlflowApiError(changed, "INVALID_PARAMETER_VALUE")).toBe(true);
    expect((changed as MlflowApiError).status).toBe(400);
    // Refused before sending: conflicting duplicates, and long values when asked to.
    const dup = await mlflow
      .logParams(runId, [
        ["k", "1"],
        ["k", "2"],
      ])
      .catch((e: unknown) => e);
    expect(isMlflowClientError(dup, "DUPLICATE_PARAM")).toBe(true);
    const strict = new MlflowClient({ trackingUri: server.url, longValues: "error" });
    const tooLong = await strict.logParams(runId, { big: "z".repeat(6001) }).catch((e: unknown) => e);
    expect(isMlflowClientError(tooLong, "VALUE_TOO_LONG")).toBe(true);
    // The client's own chunking matches what was sent.
    expect(chunkBatch(runId, { params: [{ key: "a", value: "1" }] })).toHaveLength(1);
  });

  it("finds child runs by parent and by tags, across pages", async () => {
    const parent = await mlflow.createRun({ experimentId, runName: "search-parent" });
    const other = await mlflow.createRun({ experimentId, runName: "search-other" });
    const children = [];
    for (const node of ["split", "count", "merge"]) {
      children.push(await mlflow.createRun({ experimentId, runName: node, parentRunId: parent.info.runId, tags: { "parallels.node-id": node } }));
    }
    await mlflow.createRun({ experimentId, runName: "grandchild", parentRunId: other.info.runId });

    sent = [];
    const found = await mlflow.searchAllRuns({
      experimentIds: [experimentId],
      filter: `tags.mlflow.parentRunId = '${parent.info.runId}'`,
      maxResults: 2,
    });
    expect(found.map((r) => r.info.runId).sort()).toEqual(children.map((c) => c.info.runId).sort());
    expect(sent.filter((s) => s.url.endsWith("/runs/search"))).toHaveLength(2); // 2 + 1 per page

    const viaHelper = await mlflow.childRuns([experimentId], parent.info.runId);
    expect(viaHelper.map((r) => r.info.runName).sort()).toEqual(["count", "merge", "split"]);
    const byTag = await mlflow.findRuns([experimentId], { parentRunId: parent.info.runId, tags: { "parallels.node-id": "count" } });
    expect(byTag.map((r) => r.info.runName)).toEqual(["count"]);
    const page = await mlflow.searchRuns({ experimentIds: [experimentId], filter: "attributes.run_name = 'search-other'" });
    expect(page.runs.map((r) => r.info.runId)).toEqual([other.info.runId]);
    expect(page.nextPageToken).toBeUndefined();
  });

  it("reports a missing run as a typed RESOURCE_DOES_NOT_EXIST error, without retrying", async () => {
    sent = [];
    const missing = "0123456789abcdef0123456789abcdef";
    const err = await mlflow.getRun(missing).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MlflowApiError);
    expect(isResourceDoesNotExist(err)).toBe(true);
    const e = err as MlflowApiError;
    expect(e.status).toBe(404);
    expect(e.errorCode).toBe("RESOURCE_DOES_NOT_EXIST");
    expect(e.serverMessage).toContain(missing);
    expect(e.message).toContain("/api/2.0/mlflow/runs/get");
    expect(sent).toHaveLength(1);
    const upd = await mlflow.updateRun(missing, { status: "FINISHED" }).catch((x: unknown) => x);
    expect(isResourceDoesNotExist(upd)).toBe(true);
  });

  it("reports an unreachable server as a network error after retrying reads", async () => {
    // A port that was just free on 127.0.0.1: nothing listens there.
    const { createServer } = await import("node:net");
    const port = await new Promise<number>((ok) => {
      const s = createServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => ok(p));
      });
    });
    let attempts = 0;
    const down = new MlflowClient({
      trackingUri: `http://127.0.0.1:${port}`,
      fetch: (url, init) => {
        attempts++;
        return fetch(url, init);
      },
      retry: { maxRetries: 2, baseDelayMs: 1 },
    });
    const err = await down.getRun("x").catch((e: unknown) => e);
    expect(isMlflowNetworkError(err)).toBe(true);
    expect(attempts).toBe(3);
    attempts = 0;
    await down.createRun({ experimentId: "0" }).catch(() => undefined);
    expect(attempts).toBe(1); // never retried: it could create a second run
  });
});

describe("artifacts through the tracking server's proxy", () => {
  it("uploads, lists and downloads files byte for byte", async () => {
    const { experimentId } = await mlflow.getOrCreateExperiment(uniq("artifacts"));
    const run = await mlflow.createRun({ experimentId, runName: "artifacts" });
    const runId = run.info.runId;
    const allBytes = new Uint8Array(256 * 40).map((_, i) => (i * 7 + (i >> 8)) % 256);
    const text = "naïve café — 単語 😀\r\nline 2\n";
    await mlflow.uploadArtifact(runId, "data/bin/all bytes.bin", allBytes);
    await mlflow.uploadArtifact(runId, "data/hello.txt", text, "text/plain; charset=utf-8");
    await mlflow.uploadArtifact(runId, "data/empty", new Uint8Array(0));
    await mlflow.uploadArtifact(
      runId,
      "streamed.bin",
      new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(allBytes.subarray(0, 100));
          c.enqueue(allBytes.subarray(100, 300));
          c.close();
        },
      }),
    );

    expect(await mlflow.listArtifacts(runId)).toEqual([
      { path: "data", isDir: true },
      { path: "streamed.bin", isDir: false, fileSize: 300 },
    ]);
    expect(await mlflow.listArtifacts(runId, "data/")).toEqual(
      expect.arrayContaining([
        { path: "data/bin", isDir: true },
        { path: "data/hello.txt", isDir: false, fileSize: new TextEncoder().encode(text).length },
      ]),
    );
    expect(await mlflow.listArtifactsRecursive(runId)).toEqual([
      { path: "data/bin/all bytes.bin", isDir: false, fileSize: allBytes.length },
      { path: "data/empty", isDir: false, fileSize: 0 },
      { path: "data/hello.txt", isDir: false, fileSize: new TextEncoder().encode(text).length },
      { path: "streamed.bin", isDir: false, fileSize: 300 },
    ]);
    expect(await mlflow.listArtifacts(runId, "no/such/dir")).toEqual([]);

    expect(await mlflow.downloadArtifact(runId, "data/bin/all bytes.bin")).toEqual(allBytes);
    expect(await mlflow.downloadArtifactText(runId, "data/hello.txt")).toBe(text);
    expect(await mlflow.downloadArtifact(runId, "data/empty")).toEqual(new Uint8Array(0));
    expect(await mlflow.downloadArtifact(runId, "streamed.bin")).toEqual(allBytes.subarray(0, 300));

    // Overwrite is allowed (uploads are idempotent and retried).
    await mlflow.uploadArtifact(runId, "data/hello.txt", "v2");
    expect(await mlflow.downloadArtifactText(runId, "data/hello.txt")).toBe("v2");

    const missing = await mlflow.downloadArtifact(runId, "data/nope.txt").catch((e: unknown) => e);
    expect(isResourceDoesNotExist(missing)).toBe(true);
    const outside = await mlflow.uploadArtifact(runId, "../other-run/x", "x").catch((e: unknown) => e);
    expect(isMlflowClientError(outside, "INVALID_ARGUMENT")).toBe(true);
  });
});
