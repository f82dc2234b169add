import { describe, expect, it } from "vitest";
import { buildJob, POD_ATTEMPT_ANNOTATION, resourcesOf, type JobSpecInput } from "./job-spec";
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
    // The attempt's JSON is in the pod once (an annotation); both programs read it through the downward API.
    const template = buildJob(input()).spec!.template;
    expect(template.metadata!.annotations).toEqual({ [POD_ATTEMPT_ANNOTATION]: '{"v":1}' });
    for (const c of pod.initContainers!) {
      expect(c.env).toEqual([{ name: POD_ATTEMPT_ENV, valueFrom: { fieldRef: { fieldPath: `metadata.annotations['${POD_ATTEMPT_ANNOTATION}']` } } }]);
    }
    // Test knobs of the harness (pod annotations) sit beside it.
    expect(buildJob(input({ podAnnotations: { "parallels.test/complete-delay": "1s" } })).spec!.template.metadata!.annotations).toEqual({
      "parallels.test/complete-delay": "1s",
      [POD_ATTEMPT_ANNOTATION]: '{"v":1}',
    });
    // The steps' MLflow credentials come from their own Secret, in every container.
    for (const c of [...pod.initContainers!, step]) expect(c.envFrom).toEqual([{ secretRef: { name: "mlflow-steps", optional: false } }]);
  });

  it("runs every container non-root (the pod's user and group, the step's image's own user or not), without privilege escalation or capabilities: restricted", () => {
    const pod = buildJob(input()).spec!.template.spec!;
    expect(pod.securityContext).toEqual({ runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, fsGroup: 10001, seccompProfile: { type: "RuntimeDefault" } });
    for (const c of [...pod.initContainers!, ...pod.containers]) expect(c.securityContext).toMatchObject({ allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } });
    // The agent's programs cannot write to their image.
    for (const c of pod.initContainers!) expect(c.securityContext!.readOnlyRootFilesystem).toBe(true);
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
