// charts/parallels-agent against the suite's real API server (test/k8s/global-setup.ts): every
// scenario passes the server's dry run; `helm install --wait` brings the agent's Deployment to
// Available on the kwok nodes; a token of the chart's ServiceAccount can do exactly what its Roles
// grant (kubectl auth can-i, and real requests) and is refused the rest with the API's own 403;
// `helm upgrade` keeps what the agent wrote to its credentials Secret; `helm uninstall` cleans up.
// kwok runs nothing inside the pods: the agent's process itself is not started here.
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CommandError, FAKE_POD_LOG_LINES } from "../../scripts/k8s/harness";
import { condition, deleteNamespace, getJson, job, newNamespace, type Pod, sharedCluster, waitFor } from "./support";

const CHART = resolve(dirname(fileURLToPath(import.meta.url)), "../../charts/parallels-agent");
const ci = (f: string) => join(CHART, "ci", f);
const RELEASE = "parallels-agent";
const CREDENTIALS = "parallels-agent-credentials";
const c = sharedCluster();
let ns: string;
let workNs: string;
let splitNs: string;
let dir: string;

beforeAll(async () => {
  [ns, workNs, splitNs] = await Promise.all([newNamespace(c, "chart"), newNamespace(c, "chart-work"), newNamespace(c, "chart-split")]);
  dir = mkdtempSync(join(tmpdir(), "parallels-chart-k8s-"));
});
afterAll(async () => {
  for (const [release, where] of [
    [RELEASE, ns],
    ["split", splitNs],
  ] as const) {
    await c.helm(["uninstall", release, "-n", where, "--ignore-not-found"]).catch(() => undefined);
  }
  await Promise.all([ns, workNs, splitNs].map((n) => deleteNamespace(c, n)));
  rmSync(dir, { recursive: true, force: true });
});

/** kubectl as a ServiceAccount: its token from the TokenRequest API, in a 0600 kubeconfig (never on a command line). */
async function as(namespace: string, serviceAccount: string) {
  const token = (await c.kubectl(["-n", namespace, "create", "token", serviceAccount, "--duration=10m"])).trim();
  const kubeconfig = join(dir, `${namespace}-${serviceAccount}.kubeconfig`);
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "h", cluster: { server: c.apiUrl, "certificate-authority": c.caFile } }],
      users: [{ name: "sa", user: { token } }],
      contexts: [{ name: "sa", context: { cluster: "h", user: "sa" } }],
      "current-context": "sa",
    }),
    { mode: 0o600 },
  );
  const user = `system:serviceaccount:${namespace}:${serviceAccount}`;
  return {
    token,
    user,
    /** `kubectl auth can-i …` → "yes" or "no" (it exits 1 for no). */
    async canI(...args: string[]): Promise<string> {
      try {
        return (await c.kubectl(["auth", "can-i", ...args], { env: { KUBECONFIG: kubeconfig } })).trim();
      } catch (err) {
        if (err instanceof CommandError && err.exitCode === 1) return err.stdout.trim();
        throw err;
      }
    },
  };
}

describe("helm template | kubectl apply --dry-run=server", () => {
  const scenarios = readdirSync(join(CHART, "ci")).filter((f) => f.endsWith("-values.yaml"));

  it.each(scenarios)("%s: the API server accepts every object", async (scenario) => {
    const extra = ["work-values.yaml", "proxy-secret-values.yaml"].includes(scenario) ? ["--set", `work.namespace=${workNs}`] : [];
    const manifest = await c.helm(["template", RELEASE, CHART, "-n", ns, "-f", ci(scenario), ...extra]);
    // Every object names its namespace (the work objects may be in another).
    const out = await c.kubectl(["apply", "--dry-run=server", "-f", "-"], { input: manifest });
    const lines = out.trim().split("\n");
    expect(lines).toHaveLength(manifest.split(/^---$/m).filter((doc) => /^kind: /m.test(doc)).length);
    for (const line of lines) expect(line).toMatch(/ created \(server dry run\)$/);
    expect(out).toContain(`deployment.apps/${RELEASE} created (server dry run)`);
    // The CA bundle's ConfigMap in both namespaces: the agent's, and the one of the pods it makes.
    if (scenario === "proxy-secret-values.yaml") expect(lines.filter((l) => l.startsWith(`configmap/${RELEASE}-ca `))).toHaveLength(2);
  });
});

describe("values profiles: helm template | kubectl apply --dry-run=server", () => {
  // As users install a profile: the install line's values (ci/default-values.yaml), then the profile.
  it.each(["values-eks.yaml", "values-ezmeral.yaml"])("%s: the API server accepts every object, the work ServiceAccount's annotations kept", async (profile) => {
    const manifest = await c.helm(["template", RELEASE, CHART, "-n", ns, "-f", ci("default-values.yaml"), "-f", join(CHART, profile)]);
    const out = await c.kubectl(["apply", "--dry-run=server", "-o", "json", "-f", "-"], { input: manifest });
    // kubectl prints a List of what the server answered: the objects as it would store them.
    const answered = JSON.parse(out) as { items: { kind: string; metadata: { name: string; annotations?: Record<string, string> }; spec?: { storageClassName?: string } }[] };
    const rendered = manifest.split(/^---$/m).filter((doc) => /^kind: /m.test(doc)).length;
    expect(answered.items).toHaveLength(rendered);
    expect(answered.items.map((o) => o.kind)).toContain("Deployment");
    const workSa = answered.items.find((o) => o.kind === "ServiceAccount" && o.metadata.name === `${RELEASE}-work`)!;
    // Client-side apply adds its own record of the object; the rest is what the chart set.
    const { "kubectl.kubernetes.io/last-applied-configuration": _applied, ...annotations } = workSa.metadata.annotations ?? {};
    const pvc = answered.items.find((o) => o.kind === "PersistentVolumeClaim")!;
    if (profile === "values-eks.yaml") {
      expect(annotations).toEqual({ "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/parallels-steps" });
      expect(pvc.spec?.storageClassName).toBe("gp3");
    } else {
      expect(annotations).toEqual({});
      expect(pvc.spec?.storageClassName).toBe("hpe-standard");
    }
  });
});

describe("helm install, RBAC, upgrade, uninstall", () => {
  it("installs with --wait: the Deployment is Available, its pod Running and Ready on a kwok node, hardened as rendered; NOTES say how to check", async () => {
    // No storage provisioner in the harness: the state dir on an emptyDir (the PVC passed the dry run above).
    const out = await c.helm(["install", RELEASE, CHART, "-n", ns, "-f", ci("default-values.yaml"), "--set", "persistence.enabled=false", "--wait", "--timeout", "90s"]);
    expect(out).toContain(`kubectl -n ${ns} logs deploy/${RELEASE} | grep -E '"msg":"(registered|agent running)'`);
    expect(out).toContain(`kubectl -n ${ns} rollout status deploy/${RELEASE}`);
    expect(out).toContain('curl -s -H "Authorization: Bearer $T" https://parallels.example.com/v1/clusters/gpu-lab');
    expect(out).toContain('answers "status":"online"');
    const deploy = await getJson<{ status: { conditions: { type: string; status: string }[]; availableReplicas: number } }>(c, ns, "deploy", RELEASE);
    expect(condition(deploy, "Available")).toBeDefined();
    expect(deploy.status.availableReplicas).toBe(1);
    const pods = (
      await getJson<{ items: (Pod & { spec: { securityContext: object; containers: { securityContext: object }[]; automountServiceAccountToken: boolean } })[] }>(
        c,
        ns,
        "pods",
        "-l",
        `app.kubernetes.io/instance=${RELEASE}`,
      )
    ).items;
    expect(pods).toHaveLength(1);
    const pod = pods[0]!;
    expect(pod.status.phase).toBe("Running");
    expect(condition(pod, "Ready")).toBeDefined();
    expect(pod.spec.nodeName).toMatch(/^kwok-cpu-/); // not the tainted GPU node
    // What the API server stored is what was rendered (no field dropped or defaulted away).
    expect(pod.spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001, seccompProfile: { type: "RuntimeDefault" } });
    expect(pod.spec.containers[0]!.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } });
    expect((await c.kubectl(["-n", ns, "logs", `deploy/${RELEASE}`])).trim().split("\n")).toEqual(FAKE_POD_LOG_LINES); // the NOTES' command works
  });

  it("the chart's ServiceAccount token can do everything its Roles grant (kubectl auth can-i), and nothing more", async () => {
    const agent = await as(ns, RELEASE);
    expect((await c.kubectl(["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"], { env: { KUBECONFIG: join(dir, `${ns}-${RELEASE}.kubeconfig`) } })).trim()).toBe(agent.user);
    const yes = [
      ...["create", "get", "list", "watch", "delete"].map((v) => [v, "jobs.batch", "-n", ns]),
      ...["get", "list", "watch"].map((v) => [v, "pods", "-n", ns]),
      ["get", "pods", "--subresource=log", "-n", ns],
      ...["get", "list", "watch"].map((v) => [v, "events", "-n", ns]),
      ...["get", "update", "patch"].map((v) => [v, `secrets/${CREDENTIALS}`, "-n", ns]),
      ...["get", "list", "watch"].map((v) => [v, "nodes"]),
    ];
    const no = [
      ["update", "jobs.batch", "-n", ns],
      ["patch", "jobs.batch", "-n", ns],
      ["create", "pods", "-n", ns],
      ["delete", "pods", "-n", ns],
      ["create", "pods", "--subresource=exec", "-n", ns],
      ["create", "secrets", "-n", ns],
      ["list", "secrets", "-n", ns],
      ["watch", "secrets", "-n", ns],
      ["get", `secrets/${RELEASE}-bootstrap`, "-n", ns],
      ["delete", `secrets/${CREDENTIALS}`, "-n", ns],
      ["list", "secrets", "-n", "kube-system"],
      ["create", "jobs.batch", "-n", "default"],
      ["list", "pods", "-n", "kube-system"],
      ["update", "nodes"],
      ["create", "roles.rbac.authorization.k8s.io", "-n", ns],
      ["*", "*"],
    ];
    const answers = async (list: string[][]) => Promise.all(list.map(async (a) => `${a.join(" ")}: ${await agent.canI(...a)}`));
    expect(await answers(yes)).toEqual(yes.map((a) => `${a.join(" ")}: yes`));
    expect(await answers(no)).toEqual(no.map((a) => `${a.join(" ")}: no`));
  });

  it("…and real requests: a Job, pods and their logs, events, nodes, its own Secret read and patched; other Secrets refused with the API's 403", async () => {
    const { token, user } = await as(ns, RELEASE);
    const made = await c.request(`/apis/batch/v1/namespaces/${ns}/jobs`, { token, body: job("by-the-agent", {}) });
    expect(made.status, made.text).toBe(201);
    expect((await c.request(`/apis/batch/v1/namespaces/${ns}/jobs/by-the-agent`, { token })).status).toBe(200);
    const pods = await c.request(`/api/v1/namespaces/${ns}/pods`, { token });
    expect(pods.status).toBe(200);
    const agentPod = pods.json<{ items: Pod[] }>().items.find((p) => p.metadata.labels?.["app.kubernetes.io/instance"] === RELEASE)!;
    const log = await c.request(`/api/v1/namespaces/${ns}/pods/${agentPod.metadata.name}/log`, { token });
    expect(log.status).toBe(200);
    expect((await c.request(`/api/v1/namespaces/${ns}/events`, { token })).status).toBe(200);
    const nodes = await c.request("/api/v1/nodes", { token });
    expect(nodes.status).toBe(200);
    expect(nodes.json<{ items: { status: { capacity: Record<string, string> } }[] }>().items.some((n) => n.status.capacity["nvidia.com/gpu"] === "4")).toBe(true);
    const deleted = await c.request(`/apis/batch/v1/namespaces/${ns}/jobs/by-the-agent?propagationPolicy=Background`, { token, method: "DELETE" });
    expect(deleted.status, deleted.text).toBe(200);

    // Its credentials Secret, created empty by the chart: read, patched, updated.
    const secretPath = `/api/v1/namespaces/${ns}/secrets/${CREDENTIALS}`;
    const empty = await c.request(secretPath, { token });
    expect(empty.status, empty.text).toBe(200);
    expect(empty.json<{ data?: object }>().data).toBeUndefined();
    const stored = Buffer.from(JSON.stringify({ clusterId: "c-1", credential: "stand-in" })).toString("base64");
    const patched = await c.request(secretPath, { token, method: "PATCH", contentType: "application/merge-patch+json", body: { data: { "credentials.json": stored } } });
    expect(patched.status, patched.text).toBe(200);
    const current = patched.json<{ metadata: { resourceVersion: string }; data: Record<string, string> }>();
    const updated = await c.request(secretPath, { token, method: "PUT", body: { ...current, data: { ...current.data, "credentials.json": stored } } });
    expect(updated.status, updated.text).toBe(200);

    // Everything else about Secrets: the API's own refusals.
    const forbidden = async (path: string, req: Parameters<typeof c.request>[1] = {}) => {
      const r = await c.request(path, { token, ...req });
      expect(r.status, r.text).toBe(403);
      return r.json<{ message: string }>().message;
    };
    expect(await forbidden("/api/v1/namespaces/kube-system/secrets")).toBe(`secrets is forbidden: User "${user}" cannot list resource "secrets" in API group "" in the namespace "kube-system"`);
    expect(await forbidden(`/api/v1/namespaces/${ns}/secrets/${RELEASE}-bootstrap`)).toBe(
      `secrets "${RELEASE}-bootstrap" is forbidden: User "${user}" cannot get resource "secrets" in API group "" in the namespace "${ns}"`,
    );
    expect(await forbidden(`/api/v1/namespaces/${ns}/secrets`)).toBe(`secrets is forbidden: User "${user}" cannot list resource "secrets" in API group "" in the namespace "${ns}"`);
    expect(await forbidden(`/api/v1/namespaces/${ns}/secrets`, { body: { apiVersion: "v1", kind: "Secret", metadata: { name: "mine" } } })).toBe(
      `secrets is forbidden: User "${user}" cannot create resource "secrets" in API group "" in the namespace "${ns}"`,
    );
    expect(
      await forbidden(`/api/v1/namespaces/${ns}/pods`, { body: { apiVersion: "v1", kind: "Pod", metadata: { name: "direct" }, spec: { containers: [{ name: "x", image: "example.invalid/x" }] } } }),
    ).toBe(`pods is forbidden: User "${user}" cannot create resource "pods" in API group "" in the namespace "${ns}"`);
    expect(await forbidden("/apis/batch/v1/namespaces/default/jobs", { body: job("elsewhere", {}) })).toBe(
      `jobs.batch is forbidden: User "${user}" cannot create resource "jobs" in API group "batch" in the namespace "default"`,
    );
  });

  it("the work pods' ServiceAccount can do nothing", async () => {
    const work = await as(ns, `${RELEASE}-work`);
    for (const a of [
      ["list", "pods", "-n", ns],
      ["create", "jobs.batch", "-n", ns],
      [`get`, `secrets/${CREDENTIALS}`, "-n", ns],
      ["list", "nodes"],
    ]) {
      expect(`${a.join(" ")}: ${await work.canI(...a)}`).toBe(`${a.join(" ")}: no`);
    }
    const r = await c.request(`/api/v1/namespaces/${ns}/pods`, { token: work.token });
    expect(r.status).toBe(403);
  });

  it("helm upgrade keeps what the agent wrote to its credentials Secret", async () => {
    const before = await getJson<{ data: Record<string, string> }>(c, ns, "secret", CREDENTIALS);
    expect(Object.keys(before.data)).toEqual(["credentials.json"]);
    // Values given again in full (not --reuse-values): the Secret's manifest has no data to merge over what the agent wrote.
    await c.helm(["upgrade", RELEASE, CHART, "-n", ns, "-f", ci("default-values.yaml"), "--set", "persistence.enabled=false", "--set", "logLevel=debug", "--wait", "--timeout", "90s"]);
    const after = await getJson<{ data: Record<string, string> }>(c, ns, "secret", CREDENTIALS);
    expect(after.data).toEqual(before.data);
    const env = (await getJson<{ spec: { template: { spec: { containers: { env: { name: string; value?: string }[] }[] } } } }>(c, ns, "deploy", RELEASE)).spec.template.spec.containers[0]!.env;
    expect(env.find((e) => e.name === "PARALLELS_LOG_LEVEL")?.value).toBe("debug");
  });

  it("with work.namespace set, the work Role binds the agent there, and the agent's own namespace grants it only its Secret", async () => {
    await c.helm(["install", "split", CHART, "-n", splitNs, "-f", ci("work-values.yaml"), "--set", `work.namespace=${workNs}`, "--set", "persistence.enabled=false", "--wait", "--timeout", "90s"]);
    const agent = await as(splitNs, "split-parallels-agent");
    const ask = async (...a: string[]) => `${a.join(" ")}: ${await agent.canI(...a)}`;
    expect(await ask("create", "jobs.batch", "-n", workNs)).toBe(`create jobs.batch -n ${workNs}: yes`);
    expect(await ask("get", "pods", "--subresource=log", "-n", workNs)).toBe(`get pods --subresource=log -n ${workNs}: yes`);
    expect(await ask("create", "jobs.batch", "-n", splitNs)).toBe(`create jobs.batch -n ${splitNs}: no`);
    expect(await ask("patch", "secrets/split-parallels-agent-credentials", "-n", splitNs)).toBe(`patch secrets/split-parallels-agent-credentials -n ${splitNs}: yes`);
    expect(await ask("get", "secrets/split-parallels-agent-credentials", "-n", workNs)).toBe(`get secrets/split-parallels-agent-credentials -n ${workNs}: no`);
    const sa = await getJson<{ automountServiceAccountToken: boolean }>(c, workNs, "serviceaccount", "split-parallels-agent-work");
    expect(sa.automountServiceAccountToken).toBe(false);
    await c.helm(["uninstall", "split", "-n", splitNs, "--wait"]);
    expect((await c.kubectl(["-n", workNs, "get", "roles,rolebindings,serviceaccounts", "-l", "app.kubernetes.io/instance=split", "-o", "name"])).trim()).toBe("");
  });

  it("helm uninstall removes everything the chart made, the ClusterRole and the agent's credentials included", async () => {
    await c.helm(["uninstall", RELEASE, "-n", ns, "--wait", "--timeout", "90s"]);
    const left = () => c.kubectl(["-n", ns, "get", "deploy,rs,pods,sa,secrets,configmaps,pvc,roles,rolebindings", "-l", `app.kubernetes.io/instance=${RELEASE}`, "-o", "name"]);
    // The Deployment's pod goes through the garbage collector and kwok's deletion stage: a moment later.
    await waitFor("the release's objects to be gone", async () => ((await left()).trim() === "" ? true : undefined), 30_000);
    const cluster = await c.kubectl(["get", "clusterroles,clusterrolebindings", "-o", "name"]);
    expect(cluster).not.toContain(`${ns}:${RELEASE}:nodes`);
    // Nothing but what every namespace has.
    expect((await c.kubectl(["-n", ns, "get", "sa,secrets", "-o", "name"])).trim().split("\n").sort()).toEqual(["serviceaccount/default"]);
  });
});
