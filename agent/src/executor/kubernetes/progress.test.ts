import { describe, expect, it } from "vitest";
import { parseIndexes } from "../../../../proto/indexes";
import { observeJob, observePod, type ObservedPod } from "./observed";
import { partitionOfIndex } from "./pod-attempt";
import { METADATA_REFUSED_EXIT } from "./pod-layout";
import { nodeView, partitionFailuresOf, progressOf } from "./progress";

const job = (status: Record<string, unknown>, completions = 10) =>
  observeJob({
    metadata: { name: "p-count-abc", labels: { "parallels.io/attempt": "1", "parallels.io/node": "count" }, annotations: { "parallels.io/node-run-id": "r1-count", "parallels.io/run-id": "r1" } },
    spec: { completions },
    status,
  })!;
const pod = (index: number, status: Record<string, unknown>) =>
  observePod({
    metadata: { name: `p-count-abc-${index}-x`, labels: { "batch.kubernetes.io/job-name": "p-count-abc" }, annotations: { "batch.kubernetes.io/job-completion-index": String(index) } },
    status,
  })!;
const byIndex = (...pods: ObservedPod[]) => new Map(pods.map((p) => [p.index, p]));

describe("a Job read as an attempt's progress", () => {
  it("reads Kubernetes' index lists", () => {
    expect(parseIndexes("0-2,4,7-8")).toEqual([0, 1, 2, 4, 7, 8]);
    expect(parseIndexes("")).toEqual([]);
    expect(parseIndexes(undefined)).toEqual([]);
  });

  it("counts partitions as the Job controller does, and says why pods wait", () => {
    const j = job({ active: 3, completedIndexes: "0-4", failedIndexes: "" });
    const waiting = pod(8, { phase: "Pending", conditions: [{ type: "PodScheduled", status: "False", reason: "Unschedulable", message: "0/3 nodes are available: 3 Insufficient nvidia.com/gpu." }] });
    const pulling = pod(9, { phase: "Pending", containerStatuses: [{ name: "step", state: { waiting: { reason: "ImagePullBackOff", message: 'Back-off pulling image "nope:1"' } } }] });
    const p = progressOf(j, byIndex(waiting, pulling));
    expect(p.counts).toEqual({ total: 10, done: 5, failed: 0, running: 3 });
    expect(p.end).toBeNull();
    expect(p.waiting).toBe('1 pod Unschedulable: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu.; 1 pod ImagePullBackOff: Back-off pulling image "nope:1"');
  });

  it("a Complete Job is the attempt's success", () => {
    const p = progressOf(job({ completedIndexes: "0-9", conditions: [{ type: "Complete", status: "True" }] }), new Map());
    expect(p).toEqual({ counts: { total: 10, done: 10, failed: 0, running: 0 }, waiting: null, end: { outcome: "succeeded", message: null } });
  });

  it("a Failed Job names its failed indexes with each one's exit code, reason and last words", () => {
    const j = job({ completedIndexes: "0-2,4-6,8-9", failedIndexes: "3,7", conditions: [{ type: "Failed", status: "True", reason: "FailedIndexes" }] });
    const p = progressOf(
      j,
      byIndex(
        pod(3, { phase: "Failed", containerStatuses: [{ name: "step", state: { terminated: { exitCode: 42, reason: "Error", message: "ValueError: bad row 17\n" } } }] }),
        pod(7, { phase: "Failed", containerStatuses: [{ name: "step", state: { terminated: { exitCode: 137, reason: "OOMKilled" } } }] }),
      ),
    );
    expect(p.counts).toEqual({ total: 10, done: 8, failed: 2, running: 0 });
    expect(p.end).toEqual({
      outcome: "failed",
      message:
        "partitions failed after their retries (2 partitions of 10 failed: 3, 7): partition 3 exited with code 42; last lines of stderr:\nValueError: bad row 17; partition 7 exited with code 137 (OOMKilled)",
    });
  });

  it("the node's timeout is said as such", () => {
    const p = progressOf(job({ conditions: [{ type: "Failed", status: "True", reason: "DeadlineExceeded", message: "Job was active longer than specified deadline" }] }, 1), new Map(), 600);
    expect(p.end!.message).toBe("the node's timeout (600 s) passed before every partition ended");
  });

  it("ignores objects that are not a parallels Job or a Job's pod", () => {
    expect(observeJob({ metadata: { name: "other" }, spec: {}, status: {} })).toBeNull();
    expect(observePod({ metadata: { name: "lonely" }, status: {} })).toBeNull();
  });
});

describe("a Failed Job's indexes as the failed event names them", () => {
  it("failedPartitions when others completed, with each one's exit code, reason and last words", async () => {
    const j = job({ completedIndexes: "0-2,4-6,8-9", failedIndexes: "3,7", conditions: [{ type: "Failed", status: "True", reason: "FailedIndexes" }] });
    const f = await partitionFailuresOf(
      j,
      byIndex(
        pod(3, { phase: "Failed", containerStatuses: [{ name: "step", state: { terminated: { exitCode: 42, reason: "Error", message: "ValueError: bad row 17\n" } } }] }),
        pod(7, { phase: "Failed", containerStatuses: [{ name: "step", state: { terminated: { exitCode: 137, reason: "OOMKilled" } } }] }),
      ),
    );
    expect(f!.failedPartitions).toBe("3,7");
    expect(f!.partitionFailures).toEqual([
      { index: 3, exitCode: 42, stderr: "ValueError: bad row 17" },
      { index: 7, exitCode: 137, reason: "OOMKilled" },
    ]);
  });

  it("an index whose pod the agent never saw fails without an exit code; no list when nothing completed", async () => {
    const f = await partitionFailuresOf(job({ failedIndexes: "0-1", conditions: [{ type: "Failed", status: "True", reason: "FailedIndexes" }] }, 2), new Map());
    expect(f!.failedPartitions).toBeUndefined();
    expect(f!.partitionFailures).toEqual([
      { index: 0, exitCode: null, reason: "failed" },
      { index: 1, exitCode: null, reason: "failed" },
    ]);
  });

  it("an index whose step succeeded but whose metadata sidecar was refused fails with the refusal, as the local executor words it", () => {
    const refusal = "output metadata refused: .metadata/2.jsonl line 1: not JSON (Unexpected token 'o')";
    const p = progressOf(
      job({ completedIndexes: "0-1", failedIndexes: "2", conditions: [{ type: "Failed", status: "True", reason: "FailedIndexes" }] }, 3),
      byIndex(pod(2, { phase: "Failed", containerStatuses: [{ name: "step", state: { terminated: { exitCode: METADATA_REFUSED_EXIT, reason: "Error", message: `${refusal}\n` } } }] })),
    );
    expect(p.end!.message).toBe(`partitions failed after their retries (1 partition of 3 failed: 2): partition 2: ${refusal}`);
    // A step of its own exiting with that code is still a step's failure.
    const own = progressOf(
      job({ failedIndexes: "0", conditions: [{ type: "Failed", status: "True", reason: "FailedIndexes" }] }, 1),
      byIndex(pod(0, { phase: "Failed", containerStatuses: [{ name: "step", state: { terminated: { exitCode: METADATA_REFUSED_EXIT, message: "bad input\n" } } }] })),
    );
    expect(own.end!.message).toBe("partitions failed after their retries: the step exited with code 65; last lines of stderr:\nbad input");
  });
});

describe("a partition retry's Job read in the node's partition numbers (nodeView)", () => {
  // The node has 10 partitions; 3 and 7 failed before. The retry's Job has 2 indexes: 0 → 3, 1 → 7.
  const record = { partitions: 10, ran: [3, 7] };

  it("maps a Job index to its partition in one place, and refuses an index the Job does not have", () => {
    expect(partitionOfIndex(undefined, 4)).toBe(4);
    expect(partitionOfIndex([3, 7], 0)).toBe(3);
    expect(partitionOfIndex([3, 7], 1)).toBe(7);
    expect(() => partitionOfIndex([3, 7], 2)).toThrow(/Job index 2 is outside the 2 partitions this Job runs \(3,7\)/);
  });

  it("counts over the whole node: the earlier successes are done, the Job's indexes are partitions", () => {
    const j = job({ active: 1, completedIndexes: "1" }, 2);
    const waiting = pod(0, { phase: "Pending", conditions: [{ type: "PodScheduled", status: "False", reason: "Unschedulable", message: "no room" }] });
    const v = nodeView(j, byIndex(waiting), record);
    expect(v.doneBefore).toBe(8);
    expect(v.job.completedIndexes).toEqual([7]);
    expect([...v.pods.keys()]).toEqual([3]);
    expect(progressOf(v.job, v.pods, undefined, v.doneBefore).counts).toEqual({ total: 10, done: 9, failed: 0, running: 1 });
    expect(progressOf(j, new Map()).counts).toEqual({ total: 2, done: 1, failed: 0, running: 1 }); // what the Job alone says
  });

  it("a failed retry names the node's partition, not the Job's index, and counts the earlier successes", async () => {
    const j = job({ completedIndexes: "0", failedIndexes: "1", conditions: [{ type: "Failed", status: "True", reason: "FailedIndexes" }] }, 2);
    const failedPod = pod(1, { phase: "Failed", containerStatuses: [{ name: "step", state: { terminated: { exitCode: 3, reason: "Error", message: "boom" } } }] });
    const v = nodeView(j, byIndex(failedPod), record);
    const p = progressOf(v.job, v.pods, undefined, v.doneBefore);
    expect(p.counts).toEqual({ total: 10, done: 9, failed: 1, running: 0 });
    expect(p.end!.message).toBe("partitions failed after their retries (1 partition of 10 failed: 7): partition 7 exited with code 3; last lines of stderr:\nboom");
    const f = await partitionFailuresOf(v.job, v.pods, v.doneBefore);
    expect(f!.failedPartitions).toBe("7");
    expect(f!.partitionFailures).toEqual([{ index: 7, exitCode: 3, stderr: "boom" }]);
  });

  it("a retry of one partition that fails alone still names it (others succeeded before)", async () => {
    const j = job({ failedIndexes: "0", conditions: [{ type: "Failed", status: "True", reason: "FailedIndexes" }] }, 1);
    const v = nodeView(j, new Map(), { partitions: 3, ran: [2] });
    const f = await partitionFailuresOf(v.job, v.pods, v.doneBefore);
    expect(f!.failedPartitions).toBe("2");
  });

  it("a Job that runs every partition is its node already", () => {
    const j = job({ completedIndexes: "0-2" }, 10);
    const v = nodeView(j, new Map(), { partitions: 10 });
    expect(v).toEqual({ job: j, pods: new Map(), doneBefore: 0 });
  });
});
