// Unit tests of the MLflow client without a server: retries, errors, batching, filters, tags,
// artifact locations. The real-server tests are in test/node/mlflow-client.test.ts.
import { describe, expect, it } from "vitest";
import { artifactLocation, normalizeArtifactPath } from "./artifacts";
import { chunkBatch, MLFLOW_LIMITS, normalizeMetrics, normalizeParams, normalizeTags, truncateCodePoints } from "./batch";
import { MlflowClient } from "./client";
import { apiErrorFromBody, isMlflowApiError, isMlflowClientError, isMlflowNetworkError, isRetryable, isServerOverloaded } from "./errors";
import { filterKey, quoteFilterValue, runFilter } from "./filter";
import { projectRunTags, projectSourceName, stripUrlCredentials } from "./tags";

type Reply = Response | Error;
function fakeFetch(replies: Reply[]) {
  const calls: { url: string; init: RequestInit | undefined }[] = [];
  const fetch = async (url: string, init?: RequestInit) => {
    calls.push({ url, init });
    const r = replies.shift();
    if (!r) throw new Error("no more replies");
    if (r instanceof Error) throw r;
    return r;
  };
  return { fetch, calls };
}
const json = (status: number, body: unknown, headers: Record<string, string> = {}) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });
const RUN = { info: { run_id: "r1", experiment_id: "1", status: "RUNNING", artifact_uri: "mlflow-artifacts:/1/r1/artifacts" }, data: {} };

function client(replies: Reply[], extra: Partial<ConstructorParameters<typeof MlflowClient>[0]> = {}) {
  const f = fakeFetch(replies);
  const sleeps: number[] = [];
  const c = new MlflowClient({
    trackingUri: "http://mlflow.test:5000/",
    fetch: f.fetch,
    sleep: async (ms) => void sleeps.push(ms),
    random: () => 0,
    ...extra,
  });
  return { c, calls: f.calls, sleeps };
}

describe("retries", () => {
  it("retries idempotent calls on 503, 429 and network errors with exponential back-off", async () => {
    const { c, calls, sleeps } = client([
      json(503, { error_code: "TEMPORARILY_UNAVAILABLE", message: "busy" }),
      new TypeError("fetch failed"),
      json(429, { error_code: "REQUEST_LIMIT_EXCEEDED", message: "slow down" }, { "Retry-After": "3" }),
      json(200, { run: RUN }),
    ]);
    const run = await c.getRun("r1");
    expect(run.info.runId).toBe("r1");
    expect(calls).toHaveLength(4);
    expect(calls[0]!.url).toBe("http://mlflow.test:5000/api/2.0/mlflow/runs/get?run_id=r1");
    expect(sleeps).toEqual([500, 1000, 3000]); // base·2^n, then the server's Retry-After
  });

  it("retries MLflow's HTTP 400 for a full database connection pool (an overloaded server), not other 400s", async () => {
    const pool = "QueuePool limit of size 5 overflow 10 reached, connection timed out, timeout 30.00 (Background on this error at: https://sqlalche.me/e/21/3o7r)";
    const { c, calls } = client([json(400, { error_code: "BAD_REQUEST", message: pool }), json(200, {})]);
    await c.logBatch("r1", { params: { a: "1" } });
    expect(calls).toHaveLength(2);
    const once = client([json(400, { error_code: "BAD_REQUEST", message: pool })]);
    const err = await once.c.createRun({ experimentId: "1" }).catch((e: unknown) => e);
    expect(once.calls).toHaveLength(1); // never retried here (a second run), but retryable by the caller
    expect(isServerOverloaded(err)).toBe(true);
    expect(isRetryable(err)).toBe(true);
    const other = apiErrorFromBody(400, JSON.stringify({ error_code: "BAD_REQUEST", message: "(sqlite3.IntegrityError) UNIQUE constraint failed" }), "POST", "/x");
    expect(isServerOverloaded(other)).toBe(false);
    expect(isRetryable(other)).toBe(false);
  });

  it("gives up after maxRetries with the last error", async () => {
    const { c, calls } = client([json(502, {}), json(502, {}), json(502, {})], { retry: { maxRetries: 2 } });
    const err = await c.getRun("r1").catch((e: unknown) => e);
    expect(isMlflowApiError(err, "INTERNAL_ERROR")).toBe(true);
    expect(calls).toHaveLength(3);
  });

  it("never retries creating a run or an experiment", async () => {
    const { c, calls } = client([json(503, { error_code: "TEMPORARILY_UNAVAILABLE", message: "x" })]);
    const err = await c.createRun({ experimentId: "1" }).catch((e: unknown) => e);
    expect(isMlflowApiError(err, "TEMPORARILY_UNAVAILABLE")).toBe(true);
    expect(calls).toHaveLength(1);
    const n = client([new TypeError("connection refused")]);
    const err2 = await n.c.createExperiment("x").catch((e: unknown) => e);
    expect(isMlflowNetworkError(err2)).toBe(true);
    expect(isRetryable(err2)).toBe(true);
    expect(n.calls).toHaveLength(1);
  });

  it("does not retry client errors (4xx other than 429)", async () => {
    const { c, calls } = client([json(400, { error_code: "INVALID_PARAMETER_VALUE", message: "bad" })]);
    await expect(c.updateRun("r1", { status: "FINISHED" })).rejects.toMatchObject({ errorCode: "INVALID_PARAMETER_VALUE", status: 400 });
    expect(calls).toHaveLength(1);
  });

  it("does not retry a streamed upload", async () => {
    const { c, calls } = client([json(200, { run: RUN }), json(503, {})]);
    const body = new ReadableStream<Uint8Array>({
      start: (ctl) => {
        ctl.enqueue(new Uint8Array([1]));
        ctl.close();
      },
    });
    await expect(c.uploadArtifact("r1", "a.bin", body)).rejects.toMatchObject({ status: 503 });
    expect(calls).toHaveLength(2);
    expect(calls[1]!.url).toBe("http://mlflow.test:5000/api/2.0/mlflow-artifacts/artifacts/1/r1/artifacts/a.bin");
  });
});

describe("requests", () => {
  it("sends JSON with auth and extra headers, and creates runs with consistent name tags", async () => {
    const { c, calls } = client([json(200, { run: RUN })], { token: "tok", headers: { "X-Extra": "1" } });
    await c.createRun({ experimentId: "1", runName: "n", startTime: 5, parentRunId: "p", tags: { "mlflow.user": "bob", "mlflow.runName": "old" } });
    const init = calls[0]!.init!;
    expect(init.method).toBe("POST");
    expect(init.headers).toMatchObject({ Authorization: "Bearer tok", "X-Extra": "1", "Content-Type": "application/json" });
    expect(JSON.parse(init.body as string)).toEqual({
      experiment_id: "1",
      start_time: 5,
      run_name: "n",
      user_id: "bob",
      tags: [
        { key: "mlflow.user", value: "bob" },
        { key: "mlflow.runName", value: "n" },
        { key: "mlflow.parentRunId", value: "p" },
      ],
    });
  });

  it("uses basic auth from username and password", async () => {
    const { c, calls } = client([json(200, { run: RUN })], { username: "u", password: "p:w" });
    await c.getRun("r1");
    expect((calls[0]!.init!.headers as Record<string, string>).Authorization).toBe(`Basic ${btoa("u:p:w")}`);
  });

  it("maps bare HTTP errors from proxies to the Python client's codes", () => {
    const e = apiErrorFromBody(404, "<html>nope</html>", "GET", "/x");
    expect(e).toMatchObject({ status: 404, errorCode: "ENDPOINT_NOT_FOUND", serverMessage: "<html>nope</html>" });
    expect(apiErrorFromBody(403, "Invalid Host header", "GET", "/x").errorCode).toBe("PERMISSION_DENIED");
    expect(apiErrorFromBody(500, "", "GET", "/x").serverMessage).toBe("HTTP 500");
  });

  it("rejects a tracking URI that is not http(s)", () => {
    expect(() => new MlflowClient({ trackingUri: "file:///tmp/mlruns" })).toThrow(/http/);
    expect(() => new MlflowClient({ trackingUri: "databricks" })).toThrow(/not a URL/);
  });

  it("reads search pages until there is no token", async () => {
    const { c, calls } = client([json(200, { runs: [RUN], next_page_token: "t1" }), json(200, { runs: [RUN] })]);
    const runs = await c.searchAllRuns({ experimentIds: ["1"], filter: runFilter({ parentRunId: "p" }) });
    expect(runs).toHaveLength(2);
    expect(JSON.parse(calls[1]!.init!.body as string)).toMatchObject({ page_token: "t1", filter: "tags.mlflow.parentRunId = 'p'" });
  });
});

describe("answers", () => {
  /** The error a call fails with. */
  const failure = (p: Promise<unknown>) =>
    p.then(
      () => expect.fail("the call succeeded"),
      (e: unknown) => e as Error,
    );

  it("refuses a malformed answer with a BAD_RESPONSE naming the endpoint and the path of each problem, without retrying", async () => {
    const { c, calls } = client([json(200, { run: { info: { run_id: 7, experiment_id: "1" } } })]);
    const err = await failure(c.getRun("r1"));
    expect(isMlflowClientError(err, "BAD_RESPONSE")).toBe(true);
    expect(err.message).toMatch(/^MLflow GET \/api\/2\.0\/mlflow\/runs\/get answered with an unexpected body: run\.info\.run_id: /);
    expect(calls).toHaveLength(1);

    const search = client([json(200, { runs: [RUN, { info: { run_id: "r2", experiment_id: "1", status: "DONE" } }] })]);
    const bad = await failure(search.c.searchRuns({ experimentIds: ["1"] }));
    expect(bad.message).toMatch(/POST \/api\/2\.0\/mlflow\/runs\/search .*runs\[1\]\.info\.status: /);

    const byName = client([json(200, { experiment: { name: "x" } })]);
    expect((await failure(byName.c.getExperimentByName("x"))).message).toMatch(/experiments\/get-by-name .*experiment\.experiment_id: /);

    const noId = client([json(200, { run: { info: { experiment_id: "1" } } })]);
    expect((await failure(noId.c.getRun("r1"))).message).toMatch(/run\.info\.run_id: a run info needs run_id \(or run_uuid\)/);

    const listing = client([json(200, { run: RUN }), json(200, { files: [{ path: "a.txt", file_size: "12 bytes" }] })]);
    expect((await failure(listing.c.listArtifacts("r1"))).message).toMatch(/GET \/api\/2\.0\/mlflow-artifacts\/artifacts .*files\[0\]\.file_size: /);
  });

  it("reads what proto3 JSON may send: int64 as strings, NaN as a string, an old run_uuid, fields it does not know", async () => {
    const { c } = client([
      json(200, { run: { info: { run_uuid: "old", experiment_id: "1", start_time: "1700000000000", new_field: { x: 1 } }, data: { metrics: [{ key: "m", value: "NaN", timestamp: "5" }] } } }),
    ]);
    const run = await c.getRun("old");
    expect(run.info).toMatchObject({ runId: "old", startTime: 1_700_000_000_000, status: "RUNNING" });
    expect(run.data.metrics).toEqual([{ key: "m", value: NaN, timestamp: 5, step: 0 }]);
  });
});

describe("batching", () => {
  it("packs within every limit", () => {
    const params = normalizeParams(Object.fromEntries(Array.from({ length: 250 }, (_, i) => [`p${i}`, i])));
    const tags = normalizeTags(Object.fromEntries(Array.from({ length: 150 }, (_, i) => [`t${i}`, "v"])));
    const metrics = normalizeMetrics(
      Array.from({ length: 2500 }, (_, i) => ({ key: "m", value: i })),
      1,
    );
    const chunks = chunkBatch("r", { params, tags, metrics });
    expect(chunks.map((c) => [c.params.length, c.tags.length, c.metrics.length])).toEqual([
      [100, 0, 0],
      [100, 0, 0],
      [50, 100, 0],
      [0, 50, 950],
      [0, 0, 1000],
      [0, 0, 550],
    ]);
  });

  it("splits by request size", () => {
    const tags = normalizeTags(Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`t${i}`, "é".repeat(8000)])));
    const chunks = chunkBatch("r", { tags });
    expect(chunks.length).toBeGreaterThan(1);
    for (const c of chunks) {
      expect(new TextEncoder().encode(JSON.stringify({ run_id: "r", ...c })).length).toBeLessThanOrEqual(MLFLOW_LIMITS.maxRequestBytes);
    }
    expect(chunks.flatMap((c) => c.tags)).toHaveLength(100);
  });

  it("sends nothing for nothing", () => {
    expect(chunkBatch("r", {})).toEqual([]);
  });

  it("dedupes params, refuses conflicting ones, keeps the last tag", () => {
    expect(
      normalizeParams([
        ["a", 1],
        ["a", "1"],
      ]),
    ).toEqual([{ key: "a", value: "1" }]);
    expect(() =>
      normalizeParams([
        { key: "a", value: 1 },
        { key: "a", value: 2 },
      ]),
    ).toThrow(/write-once/);
    expect(
      normalizeTags([
        ["a", "1"],
        ["b", "2"],
        ["a", "3"],
      ]),
    ).toEqual([
      { key: "b", value: "2" },
      { key: "a", value: "3" },
    ]);
  });

  it("counts and truncates in code points, never splitting a surrogate pair", () => {
    expect(truncateCodePoints("😀😀😀", 2)).toBe("😀😀");
    expect(normalizeParams({ p: "😀".repeat(6000) })[0]!.value).toHaveLength(12000);
    expect(normalizeParams({ p: "😀".repeat(6001) })[0]!.value).toHaveLength(12000);
    const err = (() => {
      try {
        normalizeTags({ t: "x".repeat(8001) }, MLFLOW_LIMITS, "error");
      } catch (e) {
        return e;
      }
    })();
    expect(isMlflowClientError(err, "VALUE_TOO_LONG")).toBe(true);
  });

  it("writes non-finite metric values the way proto3 JSON does", () => {
    expect(
      normalizeMetrics(
        [
          { key: "a", value: NaN },
          { key: "b", value: -Infinity, step: 2, timestamp: 7.9 },
        ],
        3,
      ),
    ).toEqual([
      { key: "a", value: "NaN", timestamp: 3, step: 0 },
      { key: "b", value: "-Infinity", timestamp: 7, step: 2 },
    ]);
  });
});

describe("filters", () => {
  it("quotes keys and values", () => {
    expect(filterKey("tags", "mlflow.parentRunId")).toBe("tags.mlflow.parentRunId");
    expect(filterKey("tags", "node-id")).toBe("tags.`node-id`");
    expect(quoteFilterValue("it's")).toBe(`"it's"`);
    expect(() => quoteFilterValue(`'"`)).toThrow(/both/);
    expect(runFilter({ parentRunId: "p", tags: { "a b": "1" }, params: { x: "2" }, status: "FAILED" })).toBe(
      "tags.mlflow.parentRunId = 'p' AND tags.`a b` = '1' AND params.x = '2' AND attributes.status = 'FAILED'",
    );
    expect(runFilter({})).toBe("");
  });
});

describe("tags", () => {
  it("builds project run tags like `mlflow run`", () => {
    expect(projectRunTags({ sourceName: "/p", entryPoint: "main", parentRunId: "x", gitRepoUrl: "https://a:b@h/r.git", extra: { k: "v" } })).toEqual({
      "mlflow.user": "unknown",
      "mlflow.source.name": "/p",
      "mlflow.source.type": "PROJECT",
      "mlflow.project.entryPoint": "main",
      "mlflow.parentRunId": "x",
      "mlflow.source.git.repoURL": "https://h/r.git",
      k: "v",
    });
    expect(projectSourceName("https://github.com/o/r", "steps/split/")).toBe("https://github.com/o/r#steps/split");
    expect(projectSourceName("https://github.com/o/r#x", "y")).toBe("https://github.com/o/r#x");
    expect(stripUrlCredentials("https://github.com/a@b")).toBe("https://github.com/a@b");
  });
});

describe("artifact locations", () => {
  it("maps mlflow-artifacts and proxy URLs, refuses others", () => {
    expect(artifactLocation("mlflow-artifacts:/1/r/artifacts", "http://h:5000/")).toEqual({ serverUrl: "http://h:5000", rootPath: "1/r/artifacts" });
    expect(artifactLocation("mlflow-artifacts://other:81/1/r/artifacts", "https://h")).toEqual({ serverUrl: "https://other:81", rootPath: "1/r/artifacts" });
    expect(artifactLocation("http://h/pre/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts", "http://x")).toEqual({
      serverUrl: "http://h/pre",
      rootPath: "1/r/artifacts",
    });
    expect(() => artifactLocation("s3://bucket/1/r/artifacts", "http://h")).toThrow(/--serve-artifacts/);
  });

  it("normalises relative paths and refuses escapes", () => {
    expect(normalizeArtifactPath("./a//b/")).toBe("a/b");
    expect(normalizeArtifactPath("", true)).toBe("");
    expect(() => normalizeArtifactPath("a/../../b")).toThrow(/relative/);
    expect(() => normalizeArtifactPath("/etc/passwd")).toThrow(/relative/);
    expect(() => normalizeArtifactPath("")).toThrow(/name a file/);
  });
});
