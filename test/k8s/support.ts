/**
 * Helpers for tests against the suite's shared cluster (test/k8s/global-setup.ts): a handle on
 * it, namespaces of a test's own, objects created from plain data, and waiting on Jobs and Pods.
 */
import { randomBytes } from "node:crypto";
import { inject } from "vitest";
import { attachK8sCluster, type K8sCluster } from "../../scripts/k8s/harness";

/** The suite's cluster, started by the global setup. Do not stop or restart it: other test files share it. */
export function sharedCluster(): K8sCluster {
  return attachK8sCluster(inject("k8s"));
}

/** A new namespace named `<prefix>-<random>`, once its default ServiceAccount exists (pods need it). */
export async function newNamespace(c: K8sCluster, prefix: string): Promise<string> {
  const ns = `${prefix}-${randomBytes(3).toString("hex")}`;
  await c.kubectl(["create", "namespace", ns]);
  await c.kubectl(["-n", ns, "wait", "--for=create", "serviceaccount/default", "--timeout=60s"]);
  return ns;
}

/** Deletes a namespace without waiting (the namespace controller finishes it). */
export async function deleteNamespace(c: K8sCluster, ns: string): Promise<void> {
  await c.kubectl(["delete", "namespace", ns, "--wait=false", "--ignore-not-found"]);
}

/** `kubectl create` of plain objects in a namespace. */
export async function create(c: K8sCluster, ns: string, ...objects: object[]): Promise<void> {
  await c.kubectl(["-n", ns, "create", "-f", "-"], { input: JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }) });
}

export async function getJson<T>(c: K8sCluster, ns: string, ...what: string[]): Promise<T> {
  return JSON.parse(await c.kubectl(["-n", ns, "get", ...what, "-o", "json"])) as T;
}

export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

export interface ContainerStatus {
  name: string;
  ready: boolean;
  started?: boolean;
  state: {
    running?: { startedAt: string };
    terminated?: { exitCode: number; reason?: string; message?: string };
    waiting?: { reason?: string };
  };
}

export interface Pod {
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: { nodeName?: string };
  status: {
    phase: string;
    conditions?: Condition[];
    containerStatuses?: ContainerStatus[];
    initContainerStatuses?: ContainerStatus[];
  };
}

export interface Job {
  metadata: { name: string };
  status: {
    active?: number;
    succeeded?: number;
    failed?: number;
    completedIndexes?: string;
    failedIndexes?: string;
    conditions?: Condition[];
  };
}

export const condition = (o: { status: { conditions?: Condition[] } }, type: string) => o.status.conditions?.find((c) => c.type === type && c.status === "True");

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` until it returns a value (not undefined); fails with `what` and the last value seen. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(250);
  }
}

/** The Job once it has ended (condition Complete or Failed). */
export function jobEnded(c: K8sCluster, ns: string, name: string, timeoutMs = 90_000): Promise<Job> {
  return waitFor(
    `job ${ns}/${name} to end`,
    async () => {
      const job = await getJson<Job>(c, ns, "job", name);
      return condition(job, "Complete") || condition(job, "Failed") ? job : undefined;
    },
    timeoutMs,
  );
}

export async function podsOf(c: K8sCluster, ns: string, job: string): Promise<Pod[]> {
  return (await getJson<{ items: Pod[] }>(c, ns, "pods", "-l", `job-name=${job}`)).items;
}

/** A Job whose pods run one container `main` (no image is ever pulled: kwok fakes the pods). */
export function job(name: string, spec: Record<string, unknown>, pod: { annotations?: Record<string, string>; env?: Record<string, string>; spec?: Record<string, unknown> } = {}) {
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name },
    spec: {
      backoffLimit: 0,
      ...spec,
      template: {
        metadata: { annotations: pod.annotations ?? {} },
        spec: {
          restartPolicy: "Never",
          containers: [
            {
              name: "main",
              image: "example.invalid/step:test",
              env: Object.entries(pod.env ?? {}).map(([n, value]) => ({ name: n, value })),
            },
          ],
          ...pod.spec,
        },
      },
    },
  };
}
