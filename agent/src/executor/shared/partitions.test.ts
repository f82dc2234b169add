import { describe, expect, it } from "vitest";
import { MlflowApiError, type MlflowClient, type Run } from "../../../../proto/mlflow";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { downloadRunArtifacts, listRunsUnion, upstreamRunIds } from "./artifacts";
import { downloadSourceFiles, listSource } from "./inputs";
import { computeManifest } from "./manifest";
import { MANIFEST_ARTIFACT, partialFailure, previousManifest, retryPlan, retryTags } from "./partitions";

describe("retryPlan", () => {
  it("runs the named partitions only, counting the others as done before", () => {
    expect(retryPlan({ retry: { attempt: 1, mlflowRunId: "r1", partitions: "3,7", total: 10 } })).toEqual({ indexes: [3, 7], total: 10, doneBefore: 8, previousRunId: "r1" });
    expect(retryPlan({ retry: { attempt: 2, mlflowRunId: "r2", partitions: "0-2,9", total: 10 } })?.doneBefore).toBe(6);
  });
  it("tags the attempt's run with what it continues; a resumed run's first attempt also names the other run's node run", () => {
    const within = retryPlan({ retry: { attempt: 1, mlflowRunId: "r1", partitions: "3,7", total: 10 } })!;
    expect(retryTags(within)).toEqual({ "parallels.outputsFrom": "r1", "parallels.partitions.ran": "3,7" });
    const resumed = retryPlan({ retry: { attempt: 2, mlflowRunId: "r2", partitions: "7", total: 10, from: { runId: "old", nodeRunId: "old-count" } } })!;
    expect(resumed).toMatchObject({ indexes: [7], doneBefore: 9, previousRunId: "r2", from: { runId: "old", nodeRunId: "old-count" } });
    expect(retryTags(resumed)).toEqual({ "parallels.outputsFrom": "r2", "parallels.partitions.ran": "7", "parallels.continues": "old/old-count" });
  });
  it("is no plan for a whole attempt, a retry without the earlier run, or indexes out of range", () => {
    expect(retryPlan({})).toBeUndefined();
    expect(retryPlan({ retry: { attempt: 1, mlflowRunId: null, partitions: "3", total: 10 } })).toBeUndefined();
    expect(retryPlan({ retry: { attempt: 1, mlflowRunId: "r", partitions: "12", total: 10 } })).toBeUndefined();
  });
});

describe("partialFailure", () => {
  const ok = (index: number) => ({ index, exitCode: 0 });
  const bad = (index: number, exitCode: number | null, stderr = "", reason?: string) => ({ index, exitCode, stderr: async () => stderr, ...(reason ? { reason } : {}) });

  it("is nothing when every partition succeeded", async () => {
    expect(await partialFailure([ok(0), ok(1)], { total: 2, doneBefore: 0, nested: true })).toBeUndefined();
  });

  it("names the failed partitions when others succeeded, with exit codes, reasons and the end of stderr", async () => {
    const r = await partialFailure([ok(0), bad(7, 1, "boom"), bad(3, null, "", "timeout"), ok(5)], { total: 10, doneBefore: 0, nested: true });
    expect(r).toMatchObject({ failedPartitions: "3,7", final: false });
    expect(r!.partitionFailures).toEqual([
      { index: 3, exitCode: null, reason: "timeout" },
      { index: 7, exitCode: 1, stderr: "boom" },
    ]);
    expect(r!.message).toBe("2 of 10 partitions failed (3,7); partition 3 ended without an exit code (timeout) (stderr was empty)");
  });

  it("counts earlier successes: a retry whose partitions all failed again still names them", async () => {
    expect((await partialFailure([bad(3, 1), bad(7, 1)], { total: 10, doneBefore: 8, nested: true }))!.failedPartitions).toBe("3,7");
    // Nothing succeeded anywhere: the whole node is to run again, no partition list.
    expect((await partialFailure([bad(0, 1), bad(1, 1)], { total: 2, doneBefore: 0, nested: true }))!.failedPartitions).toBeUndefined();
  });

  it("is final when a partition exited with a no-retry code; lists at most 50 failures and reads only their stderr", async () => {
    let read = 0;
    const ends = Array.from({ length: 120 }, (_, i) => ({ index: i, exitCode: i === 119 ? 42 : i % 2 === 0 ? 0 : 1, stderr: async () => `e${++read}`.repeat(1000) }));
    const r = await partialFailure(ends, { total: 120, doneBefore: 0, nested: true, noRetryExitCodes: [42] });
    expect(r!.final).toBe(true);
    expect(r!.partitionFailures).toHaveLength(50);
    expect(read).toBe(50);
    expect(r!.partitionFailures[0]!.stderr!.length).toBe(2000);
    expect(r!.failedPartitions).toBe(Array.from({ length: 60 }, (_, i) => 2 * i + 1).join(","));
  });

  it("an unpartitioned step: the step's message, no partition list", async () => {
    const r = await partialFailure([bad(0, 3, "disk full")], { total: 1, doneBefore: 0, nested: false });
    expect(r).toMatchObject({ message: "the step exited with code 3; last lines of stderr:\ndisk full" });
    expect(r!.failedPartitions).toBeUndefined();
  });
});

/** A fake MLflow with runs (status, tags) and their artifact paths. */
function fakeMlflow(runs: { id: string; status: string; tags: Record<string, string>; files?: string[]; text?: Record<string, string> }[]): MlflowClient {
  const asRun = (r: (typeof runs)[number]) => ({ info: { runId: r.id, status: r.status }, data: { tags: r.tags, params: {}, metrics: [] } }) as unknown as Run;
  return {
    findRuns: async () => runs.map(asRun),
    getRun: async (id: string) => asRun(runs.find((r) => r.id === id)!),
    listArtifactsRecursive: async (id: string, root: string) => (runs.find((r) => r.id === id)?.files ?? []).filter((f) => !root || f.startsWith(`${root}/`)).map((path) => ({ path, isDir: false })),
    downloadArtifact: async (id: string, path: string) => new TextEncoder().encode(`${id}:${path}`),
    downloadArtifactText: async (id: string, path: string) => {
      const t = runs.find((r) => r.id === id)?.text?.[path];
      if (t === undefined) throw new MlflowApiError({ status: 404, errorCode: "RESOURCE_DOES_NOT_EXIST", serverMessage: "no such artifact", method: "GET", endpoint: "artifacts", body: null });
      return t;
    },
  } as unknown as MlflowClient;
}

const nodeTags = (attempt: number, extra: Record<string, string> = {}) => ({ "parallels.role": "node", "parallels.nodeId": "up", "parallels.attempt": String(attempt), ...extra });

describe("an upstream node's outputs after a partition retry", () => {
  const mlflow = fakeMlflow([
    { id: "a1", status: "FAILED", tags: nodeTags(1, { "parallels.partitions.failed": "1" }), files: ["out-0.txt", "out-1.txt", "sub/x.txt", "parallels/logs/stdout.log"] },
    { id: "a2", status: "FINISHED", tags: nodeTags(2, { "parallels.outputsFrom": "a1" }), files: ["out-1.txt", "sub/y.txt"] },
    { id: "other", status: "FAILED", tags: nodeTags(0), files: ["nope.txt"] },
  ]);
  const ctx = { mlflow, experimentId: "e", parentRunId: "p" };

  it("follows parallels.outputsFrom: the newest attempt first, then the runs it continues", async () => {
    expect(await upstreamRunIds(ctx, "up")).toEqual(["a2", "a1"]);
  });

  it("lists the union, newer runs winning on equal paths, without the executor's own artifacts", async () => {
    expect(Object.fromEntries(await listRunsUnion(mlflow, ["a2", "a1"], ""))).toEqual({ "out-0.txt": "a1", "out-1.txt": "a2", "sub/x.txt": "a1", "sub/y.txt": "a2" });
    expect(Object.fromEntries(await listRunsUnion(mlflow, ["a2", "a1"], "sub"))).toEqual({ "x.txt": "a1", "y.txt": "a2" });
    expect(await listSource(mlflow, { runId: "a2", from: ["a1"] })).toEqual(["out-0.txt", "out-1.txt", "sub/x.txt", "sub/y.txt"]);
  });

  it("a pod downloads each file of its slice from the run that holds it", async () => {
    const dest = mkdtempSync(join(tmpdir(), "parallels-union-"));
    try {
      await downloadSourceFiles(mlflow, { runId: "a2", path: "sub", from: ["a1"] }, ["x.txt", "y.txt"], dest);
      expect(readFileSync(join(dest, "x.txt"), "utf8")).toBe("a1:sub/x.txt");
      expect(readFileSync(join(dest, "y.txt"), "utf8")).toBe("a2:sub/y.txt");
      await downloadRunArtifacts(mlflow, ["a2", "a1"], undefined, join(dest, "all"));
      expect(readFileSync(join(dest, "all", "out-0.txt"), "utf8")).toBe("a1:out-0.txt");
      expect(readFileSync(join(dest, "all", "out-1.txt"), "utf8")).toBe("a2:out-1.txt");
    } finally {
      rmSync(dest, { recursive: true, force: true });
    }
  });

  it("takes a FAILED attempt whose partitions only partly failed (accepted under minSuccessRatio), never a wholly failed one", async () => {
    const m = fakeMlflow([
      { id: "a1", status: "FAILED", tags: nodeTags(1) },
      { id: "a2", status: "FAILED", tags: nodeTags(2, { "parallels.partitions.failed": "3,7" }) },
    ]);
    expect(await upstreamRunIds({ ...ctx, mlflow: m }, "up")).toEqual(["a2"]);
    const none = fakeMlflow([{ id: "a1", status: "FAILED", tags: nodeTags(1) }]);
    await expect(upstreamRunIds({ ...ctx, mlflow: none }, "up")).rejects.toThrow(/no FINISHED MLflow run of upstream node 'up'.*attempt 1 FAILED/);
  });
});

describe("previousManifest", () => {
  const manifest = computeManifest({ by: "object", input: "d" }, 1, ["a", "b", "c"]);
  const plan = { indexes: [1], total: 3, doneBefore: 2, previousRunId: "a1" };
  it("reads the attempt before's manifest when it matches the retry", async () => {
    const m = fakeMlflow([{ id: "a1", status: "FAILED", tags: {}, text: { [MANIFEST_ARTIFACT]: JSON.stringify(manifest) } }]);
    expect(await previousManifest(m, plan)).toEqual(manifest);
    expect(await previousManifest(m, { ...plan, total: 4 })).toBeUndefined();
  });
  it("is undefined when it is missing or not JSON", async () => {
    expect(await previousManifest(fakeMlflow([{ id: "a1", status: "FAILED", tags: {} }]), plan)).toBeUndefined();
    expect(await previousManifest(fakeMlflow([{ id: "a1", status: "FAILED", tags: {}, text: { [MANIFEST_ARTIFACT]: "{" } }]), plan)).toBeUndefined();
  });
});
