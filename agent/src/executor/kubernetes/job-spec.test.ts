import { describe, expect, it } from "vitest";
import { buildJob, POD_ATTEMPT_ANNOTATION, resourcesOf, type JobSpecInput } from "./job-spec";
import { POD_ATTEMPT_ENV, STEP_COMMAND_ENV, STEP_WRAPPER } from "./pod-layout";
import { WORK_CA_DIR, WORK_CA_FILE, workNoProxy } from "./work-network";

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

  it("behind a proxy: every container gets the proxy URLs from the Secret (never in the spec), NO_PROXY with the cluster's own names, and the CA bundle mounted and named as each runtime reads it", () => {
    const noProxy = workNoProxy(".corp.example,10.0.0.1");
    const pod = buildJob(
      input({
        env: { SSL_CERT_FILE: "/mine.pem", MLFLOW_TRACKING_URI: "http://mlflow:5000" },
        network: { proxy: { secret: "site-proxy", noProxy }, ca: { kind: "configMap", name: "corp-ca", key: "bundle.pem" } },
      }),
    ).spec!.template.spec!;
    expect(noProxy).toBe(".corp.example,10.0.0.1,localhost,127.0.0.1,.svc,.cluster.local,$(KUBERNETES_SERVICE_HOST)");
    expect(pod.volumes).toContainEqual({ name: "parallels-ca", configMap: { name: "corp-ca", items: [{ key: "bundle.pem", path: "ca.crt" }] } });
    const step = pod.containers[0]!;
    for (const c of [...pod.initContainers!, step]) {
      const env = new Map(c.env!.map((e) => [e.name, e]));
      for (const name of ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"]) {
        expect(env.get(name), `${c.name} ${name}`).toEqual({ name, valueFrom: { secretKeyRef: { name: "site-proxy", key: name.toUpperCase(), optional: true } } });
      }
      for (const name of ["NO_PROXY", "no_proxy"]) expect(env.get(name)).toEqual({ name, value: noProxy });
      expect(env.get("NODE_EXTRA_CA_CERTS")).toEqual({ name: "NODE_EXTRA_CA_CERTS", value: WORK_CA_FILE });
      expect(c.volumeMounts).toContainEqual({ name: "parallels-ca", mountPath: WORK_CA_DIR, readOnly: true });
    }
    // The step: the wrapper's combined bundle (the image's CAs plus ours) for the variables that replace a runtime's CAs; the node's own env wins.
    const stepEnv = new Map(step.env!.map((e) => [e.name, e.value]));
    for (const name of ["REQUESTS_CA_BUNDLE", "PIP_CERT", "CURL_CA_BUNDLE"]) expect(stepEnv.get(name)).toBe("/parallels/run/ca-bundle.pem");
    expect(stepEnv.get("SSL_CERT_FILE")).toBe("/mine.pem");
    expect(step.env!.filter((e) => e.name === "SSL_CERT_FILE")).toHaveLength(1);
    expect(stepEnv.get("PARALLELS_EXTRA_CA_FILE")).toBe(WORK_CA_FILE);
    // A CA bundle from a Secret mounts the Secret.
    const fromSecret = buildJob(input({ network: { ca: { kind: "secret", name: "corp-ca", key: "ca.crt" } } })).spec!.template.spec!;
    expect(fromSecret.volumes).toContainEqual({ name: "parallels-ca", secret: { secretName: "corp-ca", items: [{ key: "ca.crt", path: "ca.crt" }] } });
    // Without a network setting, nothing of it.
    const plain = buildJob(input()).spec!.template.spec!;
    expect(JSON.stringify(plain)).not.toMatch(/PROXY|CA_CERTS|parallels-ca/i);
  });

  it("without a proxy Secret the agent's own credential-free URLs are written as they are, upper and lower case", () => {
    const step = buildJob(input({ network: { proxy: { httpsProxy: "http://proxy.corp.example:3128", httpProxy: null, noProxy: "localhost" } } })).spec!.template.spec!.containers[0]!;
    expect(step.env!.filter((e) => /proxy/i.test(e.name))).toEqual([
      { name: "HTTPS_PROXY", value: "http://proxy.corp.example:3128" },
      { name: "https_proxy", value: "http://proxy.corp.example:3128" },
      { name: "NO_PROXY", value: "localhost" },
      { name: "no_proxy", value: "localhost" },
    ]);
  });
});
