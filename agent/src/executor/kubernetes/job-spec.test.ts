import { describe, expect, it } from "vitest";
import { buildJob, resourcesOf, type JobSpecInput } from "./job-spec";
import { POD_ATTEMPT_ENV, STEP_COMMAND_ENV, STEP_WRAPPER } from "./pod-layout";

const input = (extra: Partial<JobSpecInput> = {}): JobSpecInput => ({
  name: "p-count-0123456789ab",
  namespace: "work",
  labels: { "parallels.io/run": "r1" },
  annotations: { "parallels.io/node-run-id": "r1-count" },
  partitions: 20,
  parallelism: 5,
  retriesPerIndex: 2,
  noRetryExitCodes: [],
  ttlSecondsAfterFinished: 3600,
  stepImage: "python:3.11-slim",
  command: "python count.py --min-length 1",
  env: { MLFLOW_TRACKING_URI: "http://mlflow:5000", LOG_LEVEL: "debug" },
  podAttempt: '{"v":1}',
  agentImage: "ghcr.io/example/parallels-agent:0.1.0",
  imagePullSecrets: [],
  nodeSelector: {},
  tolerations: [],
  ...extra,
});

describe("the Indexed Job of a node attempt", () => {
  it("runs `partitions` indexes, at most `parallelism` at once, each retried alone up to the node's retries", () => {
    const job = buildJob(input());
    expect(job.spec).toMatchObject({ completionMode: "Indexed", completions: 20, parallelism: 5, backoffLimitPerIndex: 2, ttlSecondsAfterFinished: 3600 });
    expect(job.spec!.activeDeadlineSeconds).toBeUndefined();
    expect(job.spec!.template.metadata!.labels).toEqual({ "parallels.io/run": "r1" });
    // Never more containers than partitions.
    expect(buildJob(input({ partitions: 3, parallelism: 10 })).spec!.parallelism).toBe(3);
  });

  it("a no-retry exit code fails its index at once; disruptions by the cluster do not count; the timeout bounds the Job", () => {
    const job = buildJob(input({ noRetryExitCodes: [3, 42], timeoutSeconds: 600 }));
    expect(job.spec!.podFailurePolicy!.rules).toEqual([
      { action: "Ignore", onPodConditions: [{ type: "DisruptionTarget", status: "True" }] },
      { action: "FailIndex", onExitCodes: { containerName: "step", operator: "In", values: [3, 42] } },
    ]);
    expect(job.spec!.activeDeadlineSeconds).toBe(600);
  });

  it("fetch and upload come from the agent's image (upload as a native sidecar); the step runs the wrapper in its own image", () => {
    const pod = buildJob(input({ stepsMlflowSecret: "mlflow-steps" })).spec!.template.spec!;
    expect(pod.restartPolicy).toBe("Never");
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.initContainers!.map((c) => [c.name, c.image, c.args, c.restartPolicy])).toEqual([
      ["fetch", "ghcr.io/example/parallels-agent:0.1.0", ["pod", "fetch"], undefined],
      ["upload", "ghcr.io/example/parallels-agent:0.1.0", ["pod", "upload"], "Always"],
    ]);
    const step = pod.containers[0]!;
    expect(step.image).toBe("python:3.11-slim");
    expect(step.command).toEqual(["/bin/sh", "-c", STEP_WRAPPER]);
    expect(step.env).toContainEqual({ name: STEP_COMMAND_ENV, value: "python count.py --min-length 1" });
    expect(pod.initContainers![0]!.env).toEqual([{ name: POD_ATTEMPT_ENV, value: '{"v":1}' }]);
    // The steps' MLflow credentials come from their own Secret, in every container.
    for (const c of [...pod.initContainers!, step]) expect(c.envFrom).toEqual([{ secretRef: { name: "mlflow-steps", optional: false } }]);
    for (const c of [...pod.initContainers!, step]) expect(c.securityContext).toMatchObject({ allowPrivilegeEscalation: false, runAsNonRoot: true, capabilities: { drop: ["ALL"] } });
  });

  it("maps resources (GPUs as nvidia.com/gpu), node selectors and tolerations", () => {
    expect(resourcesOf({ cpu: "500m", memory: "1Gi", gpu: 2 })).toEqual({ requests: { cpu: "500m", memory: "1Gi" }, limits: { memory: "1Gi", "nvidia.com/gpu": "2" } });
    expect(resourcesOf({ cpu: 2 })).toEqual({ requests: { cpu: "2" } });
    expect(resourcesOf(undefined)).toBeUndefined();
    const pod = buildJob(
      input({ nodeSelector: { pool: "gpu" }, tolerations: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }], imagePullSecrets: ["regcred"], resources: { gpu: 1 } }),
    ).spec!.template.spec!;
    expect(pod.nodeSelector).toEqual({ pool: "gpu" });
    expect(pod.tolerations).toEqual([{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }]);
    expect(pod.imagePullSecrets).toEqual([{ name: "regcred" }]);
    expect(pod.containers[0]!.resources).toEqual({ limits: { "nvidia.com/gpu": "1" } });
  });
});
