// charts/parallels-agent without a cluster: helm lint and template (helm 3.21 of the k8s
// harness), the schema and the cross-value rules, the rendered objects as typed data (hardening,
// probes, RBAC, environment), the docs, and the install line that POST /v1/clusters prints.
import { spawn } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { isMap, isScalar, parseAllDocuments, parseDocument, type Pair, type YAMLMap } from "yaml";
import { ensureK8sBinaries } from "../../scripts/k8s/harness";
import { AGENT_NODE_FLAGS } from "../../scripts/local/agent";
import { helmInstall } from "../../control/src/routes/clusters";

// The control plane's route module reaches the Durable Object class, which only workerd provides.
vi.mock("cloudflare:workers", () => ({ DurableObject: class {} }));

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const CHART = join(ROOT, "charts/parallels-agent");
const UID = 10001;
const TOKEN = "plb_ci0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"; // ci/*-values.yaml
const REQUIRED = ["--set-string", "controlPlane.url=https://parallels.example.com", "--set-string", "mlflow.trackingUri=https://mlflow.example.com"];

// ── helm ──────────────────────────────────────────────────────────────────────────────────────
let helmBin: string;
let home: string;
beforeAll(async () => {
  helmBin = join(await ensureK8sBinaries(), "helm");
  home = mkdtempSync(join(tmpdir(), "parallels-chart-"));
}, 20 * 60_000);
afterAll(() => rmSync(home, { recursive: true, force: true }));

const helmEnv = () => ({ ...process.env, HELM_CACHE_HOME: join(home, "cache"), HELM_CONFIG_HOME: join(home, "config"), HELM_DATA_HOME: join(home, "data") });

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string } = {}): Promise<Run> {
  return new Promise((ok, fail) => {
    const child = spawn(cmd, args, { cwd: opts.cwd ?? ROOT, env: opts.env ?? helmEnv(), stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    child.once("error", fail);
    child.once("close", (code) => ok({ code, stdout, stderr }));
    child.stdin.end(opts.input ?? "");
  });
}

const helm = (args: string[]) => run(helmBin, args);

// ── rendered objects ──────────────────────────────────────────────────────────────────────────
interface Meta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface Obj {
  apiVersion: string;
  kind: string;
  metadata: Meta;
}
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean }; fieldRef?: { fieldPath: string } };
}
interface Probe {
  httpGet: { path: string; port: string | number };
  periodSeconds: number;
  failureThreshold: number;
}
interface Container {
  name: string;
  image: string;
  env: EnvVar[];
  envFrom?: { secretRef: { name: string } }[];
  ports: { name: string; containerPort: number }[];
  securityContext: {
    allowPrivilegeEscalation: boolean;
    readOnlyRootFilesystem: boolean;
    runAsNonRoot: boolean;
    privileged: boolean;
    capabilities: { drop: string[]; add?: string[] };
    seccompProfile: { type: string };
  };
  resources: { requests: Record<string, string>; limits: Record<string, string> };
  livenessProbe: Probe;
  readinessProbe: Probe;
  startupProbe: Probe;
  volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface Volume {
  name: string;
  emptyDir?: { sizeLimit?: string };
  persistentVolumeClaim?: { claimName: string };
  configMap?: { name: string; items: { key: string; path: string }[] };
  secret?: { secretName: string; items: { key: string; path: string }[] };
}
interface Deployment extends Obj {
  spec: {
    replicas: number;
    strategy: { type: string };
    selector: { matchLabels: Record<string, string> };
    template: {
      metadata: Meta;
      spec: {
        serviceAccountName: string;
        automountServiceAccountToken: boolean;
        securityContext: { runAsNonRoot: boolean; runAsUser: number; runAsGroup: number; fsGroup: number; seccompProfile: { type: string } };
        imagePullSecrets?: { name: string }[];
        containers: Container[];
        volumes: Volume[];
      };
    };
  };
}
interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}
interface Role extends Obj {
  rules: Rule[];
}
interface Binding extends Obj {
  roleRef: { kind: string; name: string };
  subjects: { kind: string; name: string; namespace: string }[];
}
interface ServiceAccount extends Obj {
  automountServiceAccountToken?: boolean;
}
interface Secret extends Obj {
  type: string;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

class Rendered {
  constructor(
    readonly text: string,
    readonly objects: Obj[],
  ) {}
  all<T extends Obj>(kind: string): T[] {
    return this.objects.filter((o) => o.kind === kind) as T[];
  }
  get<T extends Obj>(kind: string, name: string): T {
    const found = this.objects.find((o) => o.kind === kind && o.metadata.name === name);
    if (!found) throw new Error(`no ${kind} ${name} among ${this.objects.map((o) => `${o.kind}/${o.metadata.name}`).join(", ")}`);
    return found as T;
  }
  has(kind: string, name?: string): boolean {
    return this.objects.some((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  }
  get deployment(): Deployment {
    const [d, ...more] = this.all<Deployment>("Deployment");
    expect(more).toEqual([]);
    return d!;
  }
  get agent(): Container {
    const [c, ...more] = this.deployment.spec.template.spec.containers;
    expect(more).toEqual([]);
    return c!;
  }
  /** The agent's environment as name → value (or the valueFrom object). */
  get env(): Record<string, string | EnvVar["valueFrom"]> {
    const names = this.agent.env.map((e) => e.name);
    expect(new Set(names).size, `duplicate env vars in ${names.join(", ")}`).toBe(names.length);
    return Object.fromEntries(this.agent.env.map((e) => [e.name, e.value ?? e.valueFrom]));
  }
  volume(name: string): Volume {
    const v = this.deployment.spec.template.spec.volumes.find((x) => x.name === name);
    if (!v) throw new Error(`no volume ${name}`);
    return v;
  }
}

/** `helm template parallels-agent` in the namespace `parallels`, with `args` after the required values or a ci/ scenario's file. */
async function template(args: string[] = [], scenario?: string): Promise<Rendered> {
  const values = scenario ? ["-f", join(CHART, "ci", scenario)] : [...REQUIRED, "--set", `bootstrap.token=${TOKEN}`];
  const r = await helm(["template", "parallels-agent", CHART, "--namespace", "parallels", ...values, ...args]);
  expect(r.code, r.stderr).toBe(0);
  return parse(r.stdout);
}

function parse(text: string): Rendered {
  const docs = parseAllDocuments(text);
  for (const d of docs) expect(d.errors, String(d.errors)).toEqual([]);
  return new Rendered(
    text,
    docs.map((d) => d.toJS() as Obj | null).filter((o): o is Obj => o !== null),
  );
}

/** helm's answer to values it must refuse. */
async function refused(args: string[]): Promise<string> {
  const r = await helm(["template", "parallels-agent", CHART, "--namespace", "parallels", ...args]);
  expect(r.code, r.stdout).not.toBe(0);
  return r.stderr;
}

const ciValues = readdirSync(join(CHART, "ci"))
  .filter((f) => f.endsWith("-values.yaml"))
  .sort();

// ── tests ─────────────────────────────────────────────────────────────────────────────────────
describe("helm lint and template", () => {
  it("lints clean (--strict) with the required values and with every ci/ scenario", async () => {
    for (const args of [[...REQUIRED, "--set", `bootstrap.token=${TOKEN}`], ...ciValues.map((f) => ["-f", join(CHART, "ci", f)])]) {
      const r = await helm(["lint", "--strict", CHART, ...args]);
      expect(r.code, `${args.join(" ")}\n${r.stdout}${r.stderr}`).toBe(0);
      expect(r.stdout).toContain("1 chart(s) linted, 0 chart(s) failed");
      expect(r.stdout).not.toMatch(/\[(WARNING|ERROR)\]/);
    }
  });

  it("renders every ci/ scenario", async () => {
    expect(ciValues).toEqual([
      "ca-configmap-values.yaml",
      "ca-secret-values.yaml",
      "default-values.yaml",
      "existing-secret-values.yaml",
      "firewalled-values.yaml",
      "proxy-secret-values.yaml",
      "work-values.yaml",
    ]);
    for (const f of ciValues) {
      const r = await helm(["template", "parallels-agent", CHART, "--namespace", "parallels", "-f", join(CHART, "ci", f)]);
      expect(r.code, `${f}: ${r.stderr}`).toBe(0);
      expect(parse(r.stdout).deployment.metadata.name).toBe("parallels-agent");
    }
  });

  it("renders exactly the objects of the README's table, by default", async () => {
    const r = await template();
    expect(r.objects.map((o) => `${o.kind}/${o.metadata.name}@${o.metadata.namespace ?? ""}`).sort()).toEqual([
      "ClusterRole/parallels:parallels-agent:nodes@",
      "ClusterRoleBinding/parallels:parallels-agent:nodes@",
      "Deployment/parallels-agent@parallels",
      "PersistentVolumeClaim/parallels-agent-state@parallels",
      "Role/parallels-agent-credentials@parallels",
      "Role/parallels-agent-work@parallels",
      "RoleBinding/parallels-agent-credentials@parallels",
      "RoleBinding/parallels-agent-work@parallels",
      "Secret/parallels-agent-bootstrap@parallels",
      "Secret/parallels-agent-credentials@parallels",
      "ServiceAccount/parallels-agent-work@parallels",
      "ServiceAccount/parallels-agent@parallels",
    ]);
    for (const o of r.objects) {
      expect(o.metadata.labels).toMatchObject({ "app.kubernetes.io/name": "parallels-agent", "app.kubernetes.io/instance": "parallels-agent", "app.kubernetes.io/managed-by": "Helm" });
    }
  });
});

describe("the agent's Deployment", () => {
  it("is one replica, Recreate, hardened: non-root 10001, read-only root, RuntimeDefault seccomp, no escalation, no capabilities", async () => {
    const r = await template();
    const d = r.deployment;
    expect(d.spec.replicas).toBe(1);
    expect(d.spec.strategy).toEqual({ type: "Recreate" });
    const pod = d.spec.template.spec;
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: UID, runAsGroup: UID, fsGroup: UID, seccompProfile: { type: "RuntimeDefault" } });
    expect(r.agent.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      privileged: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(r.agent.resources).toEqual({ requests: { cpu: "50m", memory: "128Mi" }, limits: { memory: "256Mi" } });
    // The writable places of a read-only root: /tmp and the state dir.
    expect(r.agent.volumeMounts).toEqual([
      { name: "tmp", mountPath: "/tmp" },
      { name: "state", mountPath: "/var/lib/parallels-agent" },
    ]);
    expect(r.volume("tmp").emptyDir).toBeDefined();
    expect(r.volume("state").persistentVolumeClaim).toEqual({ claimName: "parallels-agent-state" });
    expect(r.env.PARALLELS_STATE_DIR).toBe("/var/lib/parallels-agent/state"); // a folder the agent owns (it chmods it 0700)
    expect(pod.serviceAccountName).toBe("parallels-agent");
    expect(pod.automountServiceAccountToken).toBe(true);
    expect(r.agent.image).toBe("ghcr.io/mlflow-parallels/parallels-agent:0.1.0");
    expect(r.env.PARALLELS_AGENT_IMAGE).toBe(r.agent.image);
  });

  it("probes /healthz on the health port, which the agent serves on the pod IP (never 0.0.0.0)", async () => {
    const r = await template();
    expect(r.agent.ports).toEqual([{ name: "health", containerPort: 9464, protocol: "TCP" }]);
    for (const probe of [r.agent.livenessProbe, r.agent.readinessProbe, r.agent.startupProbe]) {
      expect(probe.httpGet).toEqual({ path: "/healthz", port: "health" });
    }
    expect(r.agent.startupProbe.periodSeconds * r.agent.startupProbe.failureThreshold).toBe(600);
    expect(r.env.PARALLELS_HEALTH_HOST).toEqual({ fieldRef: { fieldPath: "status.podIP" } });
    expect(r.env.PARALLELS_HEALTH_PORT).toBe("9464");
    for (const f of ciValues) {
      const text = (await helm(["template", "x", CHART, "-f", join(CHART, "ci", f)])).stdout;
      expect(text).not.toContain("0.0.0.0");
    }
  });

  it("sets the agent's environment: the Kubernetes executor's settings, the bootstrap token only from its Secret", async () => {
    const r = await template(["--set-string", "cluster.name=gpu-lab"]);
    expect(r.env).toEqual({
      PARALLELS_CONTROL_PLANE_URL: "https://parallels.example.com",
      PARALLELS_BOOTSTRAP_TOKEN: { secretKeyRef: { name: "parallels-agent-bootstrap", key: "token", optional: true } },
      PARALLELS_CLUSTER_NAME: "gpu-lab",
      PARALLELS_EXECUTOR: "kubernetes",
      PARALLELS_STATE_DIR: "/var/lib/parallels-agent/state",
      PARALLELS_HEALTH_HOST: { fieldRef: { fieldPath: "status.podIP" } },
      PARALLELS_HEALTH_PORT: "9464",
      PARALLELS_LOG_LEVEL: "info",
      PARALLELS_MAX_CONCURRENT_ATTEMPTS: "8",
      MLFLOW_TRACKING_URI: "https://mlflow.example.com",
      PARALLELS_NAMESPACE: "parallels",
      PARALLELS_AGENT_IMAGE: "ghcr.io/mlflow-parallels/parallels-agent:0.1.0",
      PARALLELS_CREDENTIALS_SECRET: "parallels-agent-credentials",
      PARALLELS_WORK_SERVICE_ACCOUNT: "parallels-agent-work",
      PARALLELS_WORK_NODE_SELECTOR: "{}",
      PARALLELS_WORK_TOLERATIONS: "[]",
      PARALLELS_GPU_TOLERATIONS: JSON.stringify([{ effect: "NoSchedule", key: "nvidia.com/gpu", operator: "Exists" }]),
      PARALLELS_JOB_TTL_SECONDS: "86400",
    });
    expect(r.agent.envFrom).toBeUndefined();
    const secret = r.get<Secret>("Secret", "parallels-agent-bootstrap");
    expect(Buffer.from(secret.data!.token!, "base64").toString()).toBe(TOKEN);
    // The token is in the Secret only: not in the Deployment, in clear nowhere.
    expect(JSON.stringify(r.deployment)).not.toContain(TOKEN);
    expect(r.text).not.toContain(TOKEN);
  });

  it("keeps whitespace (a file's newline) out of the token, and large numbers as plain integers", async () => {
    const file = join(home, "token");
    writeFileSync(file, `${TOKEN}\n`, { mode: 0o600 });
    const r = await helm(["template", "p", CHART, ...REQUIRED, "--set-file", `bootstrap.token=${file}`, "--set", "work.jobTtlSecondsAfterFinished=10000000", "--set", "maxConcurrentAttempts=10000"]);
    expect(r.code, r.stderr).toBe(0);
    const out = parse(r.stdout);
    expect(Buffer.from(out.get<Secret>("Secret", "p-parallels-agent-bootstrap").data!.token!, "base64").toString()).toBe(TOKEN);
    expect(out.env.PARALLELS_JOB_TTL_SECONDS).toBe("10000000");
    expect(out.env.PARALLELS_MAX_CONCURRENT_ATTEMPTS).toBe("10000");
  });
});

/** What the agent does in the work namespace (rbac-work.yaml) with no optional feature on. */
const WORK_RULES: Rule[] = [
  { apiGroups: ["batch"], resources: ["jobs"], verbs: ["create", "get", "list", "watch", "delete"] },
  { apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] },
  { apiGroups: [""], resources: ["pods/log"], verbs: ["get"] },
  { apiGroups: [""], resources: ["events"], verbs: ["get", "list", "watch"] },
];

describe("RBAC", () => {
  it("grants exactly the verbs the agent uses: work in the work namespace, its own Secret by name, nodes read-only", async () => {
    const r = await template();
    expect(r.get<Role>("Role", "parallels-agent-work").rules).toEqual(WORK_RULES);
    expect(r.get<Role>("Role", "parallels-agent-credentials").rules).toEqual([
      { apiGroups: [""], resources: ["secrets"], resourceNames: ["parallels-agent-credentials"], verbs: ["get", "update", "patch"] },
    ]);
    expect(r.env.PARALLELS_CREDENTIALS_SECRET).toBe("parallels-agent-credentials");
    expect(r.get<Role>("ClusterRole", "parallels:parallels-agent:nodes").rules).toEqual([{ apiGroups: [""], resources: ["nodes"], verbs: ["get", "list", "watch"] }]);
    // Each binding gives its role to the agent's ServiceAccount, and to nothing else.
    for (const [kind, name] of [
      ["RoleBinding", "parallels-agent-work"],
      ["RoleBinding", "parallels-agent-credentials"],
      ["ClusterRoleBinding", "parallels:parallels-agent:nodes"],
    ] as const) {
      const b = r.get<Binding>(kind, name);
      expect(b.roleRef).toMatchObject({ kind: kind === "RoleBinding" ? "Role" : "ClusterRole", name });
      expect(b.subjects).toEqual([{ kind: "ServiceAccount", name: "parallels-agent", namespace: "parallels" }]);
    }
    // No wildcard, no escalation, no Secret creation anywhere.
    for (const rule of [...r.all<Role>("Role"), ...r.all<Role>("ClusterRole")].flatMap((x) => x.rules)) {
      expect([...rule.verbs, ...rule.resources, ...rule.apiGroups]).not.toContain("*");
      expect(rule.verbs).not.toEqual(expect.arrayContaining(["escalate"]));
      if (rule.resources.includes("secrets")) expect(rule.verbs).not.toContain("create");
    }
    // The credentials Secret is made empty: the agent writes it; upgrades keep what it wrote.
    const creds = r.get<Secret>("Secret", "parallels-agent-credentials");
    expect(creds.data).toBeUndefined();
    expect(creds.stringData).toBeUndefined();
  });

  it("gives the work pods a ServiceAccount without a token and bound to nothing; the agent's mounts none by itself", async () => {
    const r = await template();
    expect(r.get<ServiceAccount>("ServiceAccount", "parallels-agent-work").automountServiceAccountToken).toBe(false);
    expect(r.get<ServiceAccount>("ServiceAccount", "parallels-agent").automountServiceAccountToken).toBe(false);
    const subjects = [...r.all<Binding>("RoleBinding"), ...r.all<Binding>("ClusterRoleBinding")].flatMap((b) => b.subjects.map((s) => s.name));
    expect(subjects).not.toContain("parallels-agent-work");
    expect(r.env.PARALLELS_WORK_SERVICE_ACCOUNT).toBe("parallels-agent-work");
  });

  it("puts the work Role and the work ServiceAccount in work.namespace; the credentials stay in the release namespace", async () => {
    const r = await template([], "work-values.yaml");
    for (const [kind, name] of [
      ["Role", "parallels-agent-work"],
      ["RoleBinding", "parallels-agent-work"],
      ["ServiceAccount", "parallels-agent-work"],
    ]) {
      expect(r.get(kind!, name!).metadata.namespace, `${kind}/${name}`).toBe("parallels-work");
    }
    expect(r.get<Role>("Role", "parallels-agent-work").rules).toEqual(WORK_RULES);
    expect(r.get<Binding>("RoleBinding", "parallels-agent-work").subjects).toEqual([{ kind: "ServiceAccount", name: "parallels-agent", namespace: "parallels" }]);
    for (const [kind, name] of [
      ["Role", "parallels-agent-credentials"],
      ["Secret", "parallels-agent-credentials"],
      ["Deployment", "parallels-agent"],
      ["ServiceAccount", "parallels-agent"],
    ]) {
      expect(r.get(kind!, name!).metadata.namespace, `${kind}/${name}`).toBe("parallels");
    }
    expect(r.env.PARALLELS_NAMESPACE).toBe("parallels-work");
  });
});

describe("each feature's values", () => {
  it("work: node selector, tolerations, GPU tolerations, pull secrets, Job TTL, steps' MLflow Secret", async () => {
    const r = await template([], "work-values.yaml");
    expect(JSON.parse(r.env.PARALLELS_WORK_NODE_SELECTOR as string)).toEqual({ "parallels.example/pool": "batch" });
    expect(JSON.parse(r.env.PARALLELS_WORK_TOLERATIONS as string)).toEqual([{ key: "dedicated", operator: "Equal", value: "batch", effect: "NoSchedule" }]);
    expect(JSON.parse(r.env.PARALLELS_GPU_TOLERATIONS as string)).toEqual([
      { key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" },
      { key: "gpu-vendor", operator: "Exists" },
    ]);
    expect(r.env.PARALLELS_WORK_IMAGE_PULL_SECRETS).toBe("steps-registry,steps-registry-2");
    expect(r.env.PARALLELS_JOB_TTL_SECONDS).toBe("3600");
    expect(r.env.PARALLELS_STEPS_MLFLOW_SECRET).toBe("steps-mlflow");
    expect(r.agent.envFrom).toBeUndefined(); // the steps' credentials never reach the agent
    expect(r.get<{ spec: { storageClassName: string; resources: { requests: { storage: string } } } } & Obj>("PersistentVolumeClaim", "parallels-agent-state").spec).toMatchObject({
      storageClassName: "fast-ssd",
      resources: { requests: { storage: "2Gi" } },
    });
    // An explicit empty GPU list is passed on as such (the executor adds none).
    expect((await template(["--set-json", "work.gpuTolerations=[]"])).env.PARALLELS_GPU_TOLERATIONS).toBe("[]");
  });

  it("firewalled: proxy (with NODE_USE_ENV_PROXY and the API server direct), inline CA, NATS, pull secrets, MLflow Secrets, digest", async () => {
    const r = await template([], "firewalled-values.yaml");
    expect(r.env).toMatchObject({
      NODE_USE_ENV_PROXY: "1",
      HTTPS_PROXY: "http://proxy.corp.example:3128",
      HTTP_PROXY: "http://proxy.corp.example:3128",
      NO_PROXY: ".corp.example,.svc,.cluster.local,$(KUBERNETES_SERVICE_HOST)",
      NODE_EXTRA_CA_CERTS: "/etc/parallels-agent/ca/ca-bundle.pem",
      PARALLELS_NATS_URL: "tls://nats.corp.example:4222,tls://nats-2.corp.example:4222",
      MLFLOW_TRACKING_URI: "https://mlflow.corp.example",
      PARALLELS_STEPS_MLFLOW_SECRET: "steps-mlflow",
    });
    // $(KUBERNETES_SERVICE_HOST) is expanded by the kubelet only from variables defined before.
    expect(r.agent.env.findIndex((e) => e.name === "NO_PROXY")).toBeGreaterThan(-1);
    expect(r.agent.envFrom).toEqual([{ secretRef: { name: "agent-mlflow" } }]);
    const cm = r.get<Obj & { data: Record<string, string> }>("ConfigMap", "parallels-agent-ca");
    expect(cm.data["ca.crt"]).toMatch(/^-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=]+\n-----END CERTIFICATE-----\n$/);
    expect(r.volume("ca-bundle").configMap).toEqual({ name: "parallels-agent-ca", items: [{ key: "ca.crt", path: "ca-bundle.pem" }] });
    expect(r.agent.volumeMounts).toContainEqual({ name: "ca-bundle", mountPath: "/etc/parallels-agent/ca", readOnly: true });
    expect(r.deployment.spec.template.spec.imagePullSecrets).toEqual([{ name: "corp-registry" }]);
    const image = "registry.corp.example/mlflow-parallels/parallels-agent:0.1.0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    expect(r.agent.image).toBe(image);
    expect(r.env.PARALLELS_AGENT_IMAGE).toBe(image);
    // Image builds: the registry, Kaniko, the mirror of the base images; the CA above serves the builds too (NODE_EXTRA_CA_CERTS).
    expect(r.env).toMatchObject({
      PARALLELS_IMAGE_REGISTRY: "registry.corp.example",
      PARALLELS_IMAGE_REPOSITORY_PREFIX: "ml/parallels",
      PARALLELS_IMAGE_REGISTRY_PLAIN_HTTP: "false",
      PARALLELS_IMAGE_REGISTRY_SECRET: "corp-registry-push",
      PARALLELS_IMAGE_BUILDER: "kaniko",
      PARALLELS_BASE_IMAGES: '{"pythonTag":"{minor}-slim-bookworm","registry":"registry.corp.example/mirror"}',
      PARALLELS_BUILD_TIMEOUT_SECONDS: "3600",
    });
    // The agent reads the registry's credentials Secret, that one only, nothing more.
    expect(r.get<Role>("Role", "parallels-agent-work").rules).toEqual([...WORK_RULES, { apiGroups: [""], resources: ["secrets"], resourceNames: ["corp-registry-push"], verbs: ["get"] }]);
  });

  it("the pods the agent makes: the proxy URLs from proxy.existingSecret (secretKeyRef, here and in the pods), the CA bundle named for them and its ConfigMap in the work namespace too", async () => {
    const r = await template(["--set", "work.namespace=parallels-work"], "proxy-secret-values.yaml");
    expect(r.env).toMatchObject({
      HTTPS_PROXY: { secretKeyRef: { name: "site-proxy", key: "HTTPS_PROXY", optional: true } },
      HTTP_PROXY: { secretKeyRef: { name: "site-proxy", key: "HTTP_PROXY", optional: true } },
      PARALLELS_WORK_PROXY_SECRET: "site-proxy",
      NO_PROXY: ".corp.example,.svc,.cluster.local,$(KUBERNETES_SERVICE_HOST)",
      NODE_EXTRA_CA_CERTS: "/etc/parallels-agent/ca/ca-bundle.pem",
      PARALLELS_WORK_CA_BUNDLE: "configmap/parallels-agent-ca/ca.crt",
    });
    expect(r.all<Obj>("ConfigMap").map((o) => `${o.metadata.name}@${o.metadata.namespace}`)).toEqual(["parallels-agent-ca@parallels", "parallels-agent-ca@parallels-work"]);
    // One ConfigMap when the work is in the release namespace; the site's own ConfigMap or Secret named as such.
    expect((await template([], "proxy-secret-values.yaml")).all("ConfigMap")).toHaveLength(1);
    expect((await template([], "ca-secret-values.yaml")).env.PARALLELS_WORK_CA_BUNDLE).toBe("secret/corp-ca/bundle.pem");
    expect((await template([], "ca-configmap-values.yaml")).env.PARALLELS_WORK_CA_BUNDLE).toBe("configmap/corp-ca-bundle/ca.crt");
    // Plain URLs: the agent passes its own on (no Secret named).
    expect((await template([], "firewalled-values.yaml")).env).not.toHaveProperty("PARALLELS_WORK_PROXY_SECRET");
    // Credentials never as a value; a Secret or the URLs, not both.
    const token = ["--set", `bootstrap.token=${TOKEN}`];
    expect(await refused([...REQUIRED, ...token, "--set-string", "proxy.httpsProxy=http://u:p@proxy.corp.example:3128"])).toContain("at '/proxy/httpsProxy'");
    expect(await refused([...REQUIRED, ...token, "--set", "proxy.existingSecret=site-proxy", "--set-string", "proxy.httpsProxy=http://proxy.corp.example:3128"])).toContain(
      "set either proxy.existingSecret (the URLs in a Secret) or proxy.httpsProxy/proxy.httpProxy, not both",
    );
  });

  it("without a proxy or a CA, sets none of their variables", async () => {
    const env = (await template()).env;
    for (const name of [
      "NODE_USE_ENV_PROXY",
      "HTTPS_PROXY",
      "HTTP_PROXY",
      "NO_PROXY",
      "NODE_EXTRA_CA_CERTS",
      "PARALLELS_WORK_PROXY_SECRET",
      "PARALLELS_WORK_CA_BUNDLE",
      "PARALLELS_NATS_URL",
      "PARALLELS_STEPS_MLFLOW_SECRET",
      "PARALLELS_WORK_IMAGE_PULL_SECRETS",
      "PARALLELS_IMAGE_REGISTRY",
      "PARALLELS_IMAGE_BUILDER",
    ]) {
      expect(env, name).not.toHaveProperty(name);
    }
  });

  it("caBundle from an existing Secret or ConfigMap, under its key", async () => {
    const fromSecret = await template([], "ca-secret-values.yaml");
    expect(fromSecret.volume("ca-bundle").secret).toEqual({ secretName: "corp-ca", items: [{ key: "bundle.pem", path: "ca-bundle.pem" }] });
    expect(fromSecret.has("ConfigMap")).toBe(false);
    expect(fromSecret.env.NODE_EXTRA_CA_CERTS).toBe("/etc/parallels-agent/ca/ca-bundle.pem");
    const fromConfigMap = await template([], "ca-configmap-values.yaml");
    expect(fromConfigMap.volume("ca-bundle").configMap).toEqual({ name: "corp-ca-bundle", items: [{ key: "ca.crt", path: "ca-bundle.pem" }] });
    expect(fromConfigMap.has("ConfigMap")).toBe(false);
  });

  it("bootstrap.existingSecret: no Secret of the chart's, the token read from the given one; persistence off: an emptyDir", async () => {
    const r = await template([], "existing-secret-values.yaml");
    expect(r.has("Secret", "parallels-agent-bootstrap")).toBe(false);
    expect(r.env.PARALLELS_BOOTSTRAP_TOKEN).toEqual({ secretKeyRef: { name: "my-bootstrap", key: "bootstrap-token", optional: true } });
    expect(r.has("PersistentVolumeClaim")).toBe(false);
    expect(r.volume("state").emptyDir).toEqual({ sizeLimit: "512Mi" });
    expect(r.env).not.toHaveProperty("PARALLELS_CLUSTER_NAME");
  });

  it("logLevel, maxConcurrentAttempts, agent pod placement and annotations", async () => {
    const r = await template([
      "--set",
      "logLevel=debug",
      "--set",
      "maxConcurrentAttempts=3",
      "--set-json",
      'nodeSelector={"pool":"system"}',
      "--set-json",
      'tolerations=[{"key":"system","operator":"Exists"}]',
      "--set",
      "podAnnotations.a=b",
    ]);
    expect(r.env).toMatchObject({ PARALLELS_LOG_LEVEL: "debug", PARALLELS_MAX_CONCURRENT_ATTEMPTS: "3" });
    const pod = r.deployment.spec.template as unknown as { metadata: Meta; spec: { nodeSelector: object; tolerations: object[] } };
    expect(pod.spec.nodeSelector).toEqual({ pool: "system" });
    expect(pod.spec.tolerations).toEqual([{ key: "system", operator: "Exists" }]);
    expect(pod.metadata.annotations).toMatchObject({ a: "b" });
  });

  it("a new bootstrap token or CA changes the pod's checksum (the agent restarts); other values do not", async () => {
    const sum = async (args: string[]) => (await template(args)).deployment.spec.template.metadata.annotations!["checksum/config"];
    const base = await sum([]);
    expect(await sum(["--set", "logLevel=debug"])).toBe(base);
    expect(await sum(["--set", "bootstrap.token=plb_another"])).not.toBe(base);
    expect(await sum(["--set-string", "caBundle.pem=-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----"])).not.toBe(base);
  });
});

describe("values.schema.json and _validations.tpl refuse bad values with a clear message", () => {
  it("a misspelled key, at the top and nested", async () => {
    expect(await refused([...REQUIRED, "--set", `bootstrap.token=${TOKEN}`, "--set", "persistance.enabled=false"])).toContain("at '': additional properties 'persistance' not allowed");
    expect(await refused([...REQUIRED, "--set", `bootstrap.token=${TOKEN}`, "--set-json", 'work.nodeSelecter={"a":"b"}'])).toContain("at '/work': additional properties 'nodeSelecter' not allowed");
    expect(await refused([...REQUIRED, "--set", `bootstrap.token=${TOKEN}`, "--set", "securityContext.readOnlyRootFileSystem=true"])).toContain(
      "at '/securityContext': additional properties 'readOnlyRootFileSystem' not allowed",
    );
  });

  it("a bad value: an unknown log level, a non-URL, a zero, a bad size, a toleration's typo", async () => {
    const err = await refused([
      ...REQUIRED,
      "--set",
      `bootstrap.token=${TOKEN}`,
      "--set",
      "logLevel=verbose",
      "--set-string",
      "controlPlane.url=parallels.example.com",
      "--set",
      "maxConcurrentAttempts=0",
      "--set",
      "persistence.size=lots",
      "--set-json",
      'work.gpuTolerations=[{"key":"nvidia.com/gpu","operater":"Exists"}]',
    ]); // prettier-ignore
    expect(err).toContain("at '/logLevel': value must be one of 'trace', 'debug', 'info', 'warn', 'error', 'fatal'");
    expect(err).toContain("at '/controlPlane/url': 'parallels.example.com' does not match pattern");
    expect(err).toContain("at '/maxConcurrentAttempts': minimum: got 0, want 1");
    expect(err).toContain("at '/persistence/size': 'lots' does not match pattern");
    expect(err).toContain("at '/work/gpuTolerations/0': additional properties 'operater' not allowed");
  });

  it("the required values, every missing one named at once", async () => {
    const err = await refused([]);
    expect(err).toContain("parallels-agent: 3 problem(s) with the values:");
    expect(err).toContain("  - controlPlane.url is required: the control plane's URL, as POST /v1/clusters printed it");
    expect(err).toContain("  - mlflow.trackingUri is required: the MLflow tracking server the steps log to");
    expect(err).toContain("  - a bootstrap token is required: --set-file bootstrap.token=<file holding the token of POST /v1/clusters>, or bootstrap.existingSecret=<Secret name>");
  });

  it("rules across values: token and existing Secret; two CA sources; the steps' MLflow Secret being the agent's", async () => {
    const token = ["--set", `bootstrap.token=${TOKEN}`];
    expect(await refused([...REQUIRED, ...token, "--set", "bootstrap.existingSecret=mine"])).toContain("set either bootstrap.token or bootstrap.existingSecret, not both");
    expect(await refused([...REQUIRED, ...token, "--set", "caBundle.existingSecret=a", "--set", "caBundle.existingConfigMap=b"])).toContain(
      "set at most one of caBundle.pem, caBundle.existingConfigMap and caBundle.existingSecret (got caBundle.existingConfigMap, caBundle.existingSecret)",
    );
    expect(await refused([...REQUIRED, ...token, "--set", "caBundle.pem=not-a-certificate"])).toContain("caBundle.pem must hold PEM certificates");
    expect(await refused([...REQUIRED, ...token, "--set", "mlflow.agentCredentialsSecret=mlflow", "--set", "mlflow.stepsCredentialsSecret=mlflow"])).toContain(
      "mlflow.stepsCredentialsSecret must not be the agent's own Secret (mlflow.agentCredentialsSecret)",
    );
    expect(await refused([...REQUIRED, ...token, "--set", "mlflow.stepsCredentialsSecret=parallels-agent-credentials"])).toContain(
      "mlflow.stepsCredentialsSecret must not be the agent's credentials or bootstrap Secret (parallels-agent-credentials)",
    );
  });
});

/** A profile (values-<name>.yaml) rendered as its users install it: the install line's values, then `-f` the profile. */
const profile = (name: string, args: string[] = []) => template(["-f", join(CHART, `values-${name}.yaml`), ...args]);
interface Pvc extends Obj {
  spec: { storageClassName?: string };
}

describe("values profiles (values-eks.yaml, values-ezmeral.yaml)", () => {
  it("are the two profiles, and each lints clean (--strict) with the install line's values", async () => {
    expect(
      readdirSync(CHART)
        .filter((f) => /^values-.+\.yaml$/.test(f))
        .sort(),
    ).toEqual(["values-eks.yaml", "values-ezmeral.yaml"]);
    for (const name of ["eks", "ezmeral"]) {
      const r = await helm(["lint", "--strict", CHART, ...REQUIRED, "--set", `bootstrap.token=${TOKEN}`, "-f", join(CHART, `values-${name}.yaml`)]);
      expect(r.code, `${name}\n${r.stdout}${r.stderr}`).toBe(0);
      expect(r.stdout).not.toMatch(/\[(WARNING|ERROR)\]/);
    }
  });

  it("eks: ECR images pulled with the node role, IRSA on the work ServiceAccount only, gp3, the GPU pool's tolerations, no proxy", async () => {
    const r = await profile("eks");
    const ecr = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
    expect(r.agent.image).toBe(`${ecr}/mlflow-parallels/parallels-agent:0.1.0`);
    expect(r.deployment.spec.template.spec.imagePullSecrets).toBeUndefined(); // the node role pulls from ECR
    expect(r.env).toMatchObject({ PARALLELS_IMAGE_REGISTRY: ecr, PARALLELS_IMAGE_BUILDER: "buildkit", PARALLELS_IMAGE_REGISTRY_SECRET: "ecr-push" });
    expect(r.env).not.toHaveProperty("PARALLELS_WORK_IMAGE_PULL_SECRETS");
    expect(r.get<ServiceAccount>("ServiceAccount", "parallels-agent-work").metadata.annotations).toEqual({ "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/parallels-steps" });
    // IRSA does not bring back a Kubernetes API token, and the agent's own identity stays as it was.
    expect(r.get<ServiceAccount>("ServiceAccount", "parallels-agent-work").automountServiceAccountToken).toBe(false);
    expect(r.get<ServiceAccount>("ServiceAccount", "parallels-agent").metadata.annotations).toBeUndefined();
    expect(r.get<Pvc>("PersistentVolumeClaim", "parallels-agent-state").spec.storageClassName).toBe("gp3");
    expect(JSON.parse(r.env.PARALLELS_GPU_TOLERATIONS as string)).toEqual([{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }]);
    expect(r.env.PARALLELS_WORK_TOLERATIONS).toBe("[]");
    for (const name of ["HTTPS_PROXY", "NODE_EXTRA_CA_CERTS", "PARALLELS_NATS_URL"]) expect(r.env, name).not.toHaveProperty(name);
    // The agent's ServiceAccount takes annotations too (an agent that needs AWS itself).
    const agentRole = await profile("eks", ["--set-string", "serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::123456789012:role/agent"]);
    expect(agentRole.get<ServiceAccount>("ServiceAccount", "parallels-agent").metadata.annotations).toEqual({ "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/agent" });
  });

  it("ezmeral: the proxy for HTTPS (the API server direct), NATS over wss://…:443, the CA from a ConfigMap, the private registry and Kaniko, no GPU tolerations", async () => {
    const r = await profile("ezmeral");
    expect(r.env).toMatchObject({
      NODE_USE_ENV_PROXY: "1",
      HTTPS_PROXY: "http://proxy.corp.example:3128",
      NO_PROXY: "localhost,127.0.0.1,.svc,.cluster.local,.corp.example,$(KUBERNETES_SERVICE_HOST)",
      PARALLELS_NATS_URL: "wss://nats.parallels.example.com:443",
      NODE_EXTRA_CA_CERTS: "/etc/parallels-agent/ca/ca-bundle.pem",
      PARALLELS_IMAGE_REGISTRY: "registry.corp.example:5000",
      PARALLELS_IMAGE_BUILDER: "kaniko",
      PARALLELS_IMAGE_REGISTRY_SECRET: "corp-registry-push",
      PARALLELS_WORK_IMAGE_PULL_SECRETS: "corp-registry",
      PARALLELS_GPU_TOLERATIONS: "[]",
    });
    expect(JSON.parse(r.env.PARALLELS_BASE_IMAGES as string)).toEqual({ registry: "registry.corp.example:5000/mirror" });
    expect(r.volume("ca-bundle").configMap).toEqual({ name: "corp-ca-bundle", items: [{ key: "ca.crt", path: "ca-bundle.pem" }] });
    expect(r.has("ConfigMap")).toBe(false); // the site's ConfigMap, not one of the chart's
    expect(r.agent.image).toBe("registry.corp.example:5000/mlflow-parallels/parallels-agent:0.1.0");
    expect(r.deployment.spec.template.spec.imagePullSecrets).toEqual([{ name: "corp-registry" }]);
    expect(r.get<Pvc>("PersistentVolumeClaim", "parallels-agent-state").spec.storageClassName).toBe("hpe-standard");
    for (const sa of r.all<ServiceAccount>("ServiceAccount")) expect(sa.metadata.annotations, sa.metadata.name).toBeUndefined();
  });

  it("refuses what the new values cannot take: a NATS URL of another scheme, an annotation key that is no Kubernetes name", async () => {
    const base = [...REQUIRED, "--set", `bootstrap.token=${TOKEN}`];
    expect(await refused([...base, "--set-string", "nats.url=https://nats.example.com:443"])).toContain("at '/nats/url': 'https://nats.example.com:443' does not match pattern");
    // A WebSocket URL may have a path (an ingress publishing nats-server's listener under one); a TCP one may not.
    expect(await refused([...base, "--set-string", "nats.url=tls://nats.example.com:4222/x"])).toContain("at '/nats/url'");
    const ws = await template(["--set-string", "nats.url=wss://edge.example.com:443/nats\\,wss://edge-2.example.com/nats"]);
    expect(ws.text).toContain("wss://edge.example.com:443/nats,wss://edge-2.example.com/nats");
    expect(await refused([...base, "--set-json", 'work.serviceAccountAnnotations={"bad key":"x"}'])).toContain("invalid propertyName 'bad key'");
    expect(await refused([...base, "--set-json", 'serviceAccount.annotations={"a":1}'])).toContain("at '/serviceAccount/annotations/a'");
  });
});

describe("docs", () => {
  const valuesDoc = parseDocument(readFileSync(join(CHART, "values.yaml"), "utf8"));
  const schema = JSON.parse(readFileSync(join(CHART, "values.schema.json"), "utf8")) as SchemaNode;
  interface SchemaNode {
    type?: string | string[];
    properties?: Record<string, SchemaNode>;
    additionalProperties?: boolean | SchemaNode;
    items?: SchemaNode;
    oneOf?: SchemaNode[];
  }

  /** Every value's path, and whether it (or an object above it) has a `# --` comment. */
  function documented(map: YAMLMap, prefix = "", inherited = false): { path: string; doc: boolean }[] {
    return map.items.flatMap((pair: Pair, i) => {
      const key = isScalar(pair.key) ? String(pair.key.value) : "?";
      const path = prefix ? `${prefix}.${key}` : key;
      // The comment above a nested map's first key is kept on the map itself.
      const comment = [isScalar(pair.key) ? pair.key.commentBefore : undefined, i === 0 && prefix ? map.commentBefore : undefined].filter(Boolean).join("\n");
      const doc = inherited || /^ ?-- /m.test(comment);
      // A documented object is one value (as helm-docs shows it); an undocumented one, its children.
      if (isMap(pair.value) && pair.value.items.length > 0 && !doc) return documented(pair.value, path, false);
      return [{ path, doc }];
    });
  }

  it("every value has a helm-docs `# --` comment, and a row in README.md", () => {
    const values = documented(valuesDoc.contents as YAMLMap);
    expect(values.filter((v) => !v.doc).map((v) => v.path)).toEqual([]);
    const readme = readFileSync(join(CHART, "README.md"), "utf8");
    for (const { path } of values) expect(readme, path).toContain(`| ${path} |`);
  });

  it("the schema closes every object (additionalProperties: false) and knows exactly the keys of values.yaml", () => {
    const problems: string[] = [];
    const walk = (node: SchemaNode, value: unknown, path: string) => {
      if (node.items) walk(node.items, undefined, `${path}[]`);
      for (const alt of node.oneOf ?? []) walk(alt, undefined, path);
      if (node.type !== "object") return;
      if (node.properties) {
        if (node.additionalProperties !== false) problems.push(`${path || "(root)"}: additionalProperties is not false`);
        const inValues = value && typeof value === "object" && !Array.isArray(value) ? Object.keys(value) : null;
        if (inValues) {
          for (const k of inValues) if (!(k in node.properties)) problems.push(`${path}.${k}: in values.yaml, not in the schema`);
          // Open objects (resources, security contexts, the base images' mapping) may have keys values.yaml does not set.
          if (
            (!["resources", "podSecurityContext", "securityContext", "livenessProbe", "readinessProbe", "startupProbe"].includes(path.split(".")[1] ?? "") && path !== ".images.baseImages") ||
            path.split(".").length < 2
          )
            for (const k of Object.keys(node.properties)) if (!inValues.includes(k) && !path.includes("[]")) problems.push(`${path}.${k}: in the schema, not in values.yaml`);
        }
        for (const [k, child] of Object.entries(node.properties)) walk(child, (value as Record<string, unknown> | undefined)?.[k], `${path}.${k}`);
      } else if (typeof node.additionalProperties !== "object") {
        problems.push(`${path}: an object without properties must be a typed map`);
      }
    };
    walk(schema, valuesDoc.toJS(), "");
    expect(problems).toEqual([]);
  });

  it("README.md is the output of helm-docs for the current values (no hand edits lost)", () => {
    const readme = readFileSync(join(CHART, "README.md"), "utf8");
    // helm-docs writes the default of each value as JSON; a value changed without regenerating shows here.
    const rows = new Map([...readme.matchAll(/^\| ([\w.]+) \| \w+ \| `(.*)` \| /gm)].map((m) => [m[1]!, m[2]!]));
    const values = valuesDoc.toJS() as Record<string, unknown>;
    for (const [path, shown] of rows) {
      const actual = path.split(".").reduce<unknown>((v, k) => (v as Record<string, unknown>)[k], values);
      expect(JSON.parse(shown), path).toEqual(actual);
    }
    expect(rows.size).toBe(documented(valuesDoc.contents as YAMLMap).length);
  });

  it("README.md's install line is the line POST /v1/clusters prints", () => {
    const readme = readFileSync(join(CHART, "README.md"), "utf8");
    expect(readme).toContain(helmInstall({ PUBLIC_URL: "https://parallels.example.com" } as never, { name: "gpu-lab" }, "plb_…"));
  });
});

describe("the install line of POST /v1/clusters", () => {
  const token = `plb_${"Zx9-_".repeat(8)}abc`; // the shape of newSecret("plb"): 43 base64url characters

  /**
   * Runs the line as printed, from the repository root, with `helm` on the PATH being a wrapper
   * that records what it was given — its arguments, the --set-file file's mode and content, and
   * whether any process's command line holds the token at that moment — and then runs
   * `helm template` instead of `upgrade --install`.
   */
  async function runLine(shell: "sh" | "bash", how: "-c" | "stdin", env: Record<string, string> = { MLFLOW_TRACKING_URI: "https://mlflow.example.com" }) {
    const dir = mkdtempSync(join(home, `line-${shell}-`));
    const bin = join(dir, "bin");
    const tmp = join(dir, "tmp");
    const rec = join(dir, "rec");
    for (const d of [bin, tmp, rec]) mkdirSync(d);
    writeFileSync(
      join(bin, "helm"),
      `#!/bin/sh
printf '%s\\n' "$@" >"${rec}/argv"
for a in "$@"; do
  case $a in bootstrap.token=*) f=\${a#bootstrap.token=}; stat -c %a "$f" >"${rec}/mode"; cat "$f" >"${rec}/content";; esac
done
# Which processes hold the token in their command line now (the pattern comes from a file: grep's own has none).
grep -l -a -F -f "${rec}/content" /proc/[0-9]*/cmdline 2>/dev/null | grep -v "^/proc/self/" >"${rec}/holders" || true
if [ "$1" = upgrade ] && [ "$2" = --install ]; then shift 2; exec "${helmBin}" template "$@"; fi
exec "${helmBin}" "$@"
`,
    );
    chmodSync(join(bin, "helm"), 0o755);
    const line = helmInstall({ PUBLIC_URL: "https://parallels.example.com" } as never, { name: "gpu-lab" }, token);
    const shellEnv: NodeJS.ProcessEnv = { ...helmEnv(), PATH: `${bin}:${process.env.PATH}`, TMPDIR: tmp, ...env };
    if (!("MLFLOW_TRACKING_URI" in env)) delete shellEnv.MLFLOW_TRACKING_URI; // not inherited from this process either
    const result = how === "-c" ? await run(shell, ["-c", line], { env: shellEnv }) : await run(shell, ["-s"], { env: shellEnv, input: `${line}\n` });
    const read = (f: string) => {
      try {
        return readFileSync(join(rec, f), "utf8");
      } catch {
        return null;
      }
    };
    return { line, result, argv: read("argv"), mode: read("mode"), content: read("content"), holders: read("holders"), tmpLeft: readdirSync(tmp) };
  }

  it("keeps the token off command lines: printf (a builtin) writes it to a file helm reads with --set-file", () => {
    const line = helmInstall({ PUBLIC_URL: "https://parallels.example.com" } as never, { name: "gpu-lab" }, token);
    expect(line.split(token)).toHaveLength(2); // once, as printf's argument
    expect(line).toContain(`printf '%s' '${token}' >"$f" && helm upgrade --install parallels-agent charts/parallels-agent `);
    expect(line).toContain('--set-file bootstrap.token="$f"');
    expect(line).not.toMatch(/--set(-string)? bootstrap/);
    // A quote in a value cannot break out of its word.
    expect(helmInstall({ PUBLIC_URL: "https://x/'; rm -rf ~; '" } as never, { name: "a" }, token)).toContain(`controlPlane.url='https://x/'\\''; rm -rf ~; '\\'''`);
  });

  for (const shell of ["sh", "bash"] as const) {
    it(`renders when run as printed by ${shell} (-c and from stdin); the file is 0600, holds the token, and is removed`, async () => {
      for (const how of ["-c", "stdin"] as const) {
        const r = await runLine(shell, how);
        expect(r.result.code, `${shell} ${how}: ${r.result.stderr}`).toBe(0);
        const out = parse(r.result.stdout);
        expect(Buffer.from(out.get<Secret>("Secret", "parallels-agent-bootstrap").data!.token!, "base64").toString()).toBe(token);
        expect(out.env).toMatchObject({ PARALLELS_CONTROL_PLANE_URL: "https://parallels.example.com", PARALLELS_CLUSTER_NAME: "gpu-lab", MLFLOW_TRACKING_URI: "https://mlflow.example.com" });
        expect(out.deployment.metadata.namespace).toBe("parallels");
        expect(r.argv!.split("\n").slice(0, 4)).toEqual(["upgrade", "--install", "parallels-agent", "charts/parallels-agent"]);
        expect(r.argv).not.toContain(token);
        expect(r.mode).toBe("600\n");
        expect(r.content).toBe(token); // no newline added
        // As typed at a prompt (stdin): no process has the token as an argument. The probe does see
        // one that has: `sh -c <line>` itself, which only this test runs.
        if (how === "stdin") expect(r.holders).toBe("");
        else expect(r.holders).toMatch(/^(\/proc\/\d+\/cmdline\n)+$/);
        expect(r.tmpLeft).toEqual([]);
      }
    });
  }

  it("without MLFLOW_TRACKING_URI it stops before writing anything, saying what to set; a failing helm still removes the file", async () => {
    const missing = await runLine("sh", "stdin", {});
    expect(missing.result.code).not.toBe(0);
    expect(missing.result.stderr).toContain("MLFLOW_TRACKING_URI: set MLFLOW_TRACKING_URI to the MLflow tracking server the steps log to");
    expect(missing.argv).toBeNull();
    expect(missing.tmpLeft).toEqual([]);
    const refusedByChart = await runLine("bash", "stdin", { MLFLOW_TRACKING_URI: "not a url" });
    expect(refusedByChart.result.code).not.toBe(0);
    expect(refusedByChart.result.stderr).toContain("at '/mlflow/trackingUri'");
    expect(refusedByChart.mode).toBe("600\n");
    expect(refusedByChart.tmpLeft).toEqual([]);
  });
});

describe("agent/Dockerfile", () => {
  // No image builder runs here (images are built in a later issue); this reads the Dockerfile as
  // BuildKit's parser would — instructions, JSON-form ENTRYPOINT — and holds it to the chart and
  // the bundle: the same UID, the bundle agent/build.ts writes, the V8 flags of AGENT_NODE_FLAGS.
  const text = readFileSync(join(ROOT, "agent/Dockerfile"), "utf8");
  const instructions = text
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"))
    .map((l) => {
      const [, op, args] = /^(\S+)\s+(.*)$/.exec(l) ?? [];
      return { op: op ?? l, args: args ?? "" };
    });

  it("has only known instructions; two stages on a Node 22 slim base", () => {
    const KNOWN = ["FROM", "ARG", "RUN", "COPY", "WORKDIR", "ENV", "USER", "ENTRYPOINT", "LABEL"];
    expect(instructions.map((i) => i.op).filter((op) => !KNOWN.includes(op))).toEqual([]);
    const arg = instructions.find((i) => i.op === "ARG")!;
    expect(arg.args).toMatch(/^NODE_IMAGE=node:22\.(2[1-9]|[3-9]\d)\.\d+-\w+-slim$/); // 22.21+: NODE_USE_ENV_PROXY
    expect(instructions.filter((i) => i.op === "FROM").map((i) => i.args)).toEqual(["${NODE_IMAGE} AS build", "${NODE_IMAGE}"]);
  });

  it("installs git and CA certificates, runs as the chart's UID, and starts the bundle with AGENT_NODE_FLAGS", () => {
    const runs = instructions.filter((i) => i.op === "RUN").map((i) => i.args);
    expect(runs.some((r) => /apt-get install .*\bgit\b/.test(r) && /\bca-certificates\b/.test(r))).toBe(true);
    expect(runs.some((r) => r.includes(`useradd --uid ${UID} --gid ${UID}`))).toBe(true);
    expect(runs).toContain("node agent/build.ts");
    expect(instructions.filter((i) => i.op === "USER").map((i) => i.args)).toEqual([`${UID}:${UID}`]);
    const entrypoint = instructions.filter((i) => i.op === "ENTRYPOINT");
    expect(entrypoint).toHaveLength(1);
    const argv = JSON.parse(entrypoint[0]!.args) as string[]; // JSON form: no shell in between, signals reach the agent
    expect(argv).toEqual(["/usr/bin/tini", "--", "node", ...AGENT_NODE_FLAGS, "/app/agent/dist/parallels-agent.mjs"]);
    expect(readFileSync(join(ROOT, "agent/build.ts"), "utf8")).toContain('join(import.meta.dirname, "dist", "parallels-agent.mjs")');
    // The agent reads its version from ../../package.json next to agent/dist/.
    expect(instructions.filter((i) => i.op === "COPY").map((i) => i.args)).toContain("--from=build /src/package.json ./package.json");
  });

  it("keeps the build context to the bundle's sources (no .dev.vars, no .state)", () => {
    const ignore = readFileSync(join(ROOT, "agent/Dockerfile.dockerignore"), "utf8")
      .split("\n")
      .filter((l) => l && !l.startsWith("#"));
    expect(ignore[0]).toBe("*");
    expect(ignore.filter((l) => l.startsWith("!"))).toEqual(["!package.json", "!package-lock.json", "!tsconfig.json", "!proto/", "!agent/"]);
  });
});
