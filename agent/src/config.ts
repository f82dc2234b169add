/**
 * The agent's configuration: command-line flags over environment variables over defaults,
 * validated with zod. Every problem is reported at once, naming both the flag and the variable.
 */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { z } from "zod";
import { IMAGE_REF, NodeSelectorSchema, TolerationSchema } from "../../proto/dag";
import { natsTransportOf, natsUrlProblem } from "./nats-urls";
import { type ProxySettings, proxyFromEnv } from "./proxy";
import { parseWorkCaBundle } from "./executor/kubernetes/work-network";

export const AGENT_VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version?: string }).version ?? "0.0.0";
  } catch {
    return "0.0.0";
  }
})();

/** Name of the credentials file inside the state dir (local mode). */
export const CREDENTIALS_FILE = "credentials.json";

export class ConfigError extends Error {
  constructor(
    message: string,
    readonly problems: string[] = [],
  ) {
    super(problems.length ? `${message}:\n${problems.map((p) => `  - ${p}`).join("\n")}` : message);
    this.name = "ConfigError";
  }
}

/** One setting: its flag, its environment variable, and what `--help` says about it. */
interface Setting {
  flag: string;
  env: string;
  help: string;
  boolean?: true;
}

export const SETTINGS = {
  controlPlaneUrl: { flag: "control-plane-url", env: "PARALLELS_CONTROL_PLANE_URL", help: "URL of the control plane (http or https). Required." },
  bootstrapToken: { flag: "bootstrap-token", env: "PARALLELS_BOOTSTRAP_TOKEN", help: "Single-use token from POST /v1/clusters. Needed only until credentials are stored." },
  stateDir: { flag: "state-dir", env: "PARALLELS_STATE_DIR", help: "Directory for credentials (0600), the event journal and executor state. Default .state/agent." },
  executor: { flag: "executor", env: "PARALLELS_EXECUTOR", help: "How work runs: local (processes on this machine) or kubernetes (Indexed Jobs in this cluster). Default local." },
  natsUrl: {
    flag: "nats-url",
    env: "PARALLELS_NATS_URL",
    help: "Override the NATS server URL(s) given at registration: comma-separated nats://host:port or tls://host:port, or ws://host:port or wss://host[:port][/path] (NATS over WebSocket: through HTTPS_PROXY, for a site whose only way out is a proxy). One kind, not both.",
  },
  healthHost: { flag: "health-host", env: "PARALLELS_HEALTH_HOST", help: "Address of the /healthz and /metrics server. Default 127.0.0.1." },
  healthPort: { flag: "health-port", env: "PARALLELS_HEALTH_PORT", help: "Port of the /healthz and /metrics server (0: any free port). Default 9464." },
  heartbeatSeconds: { flag: "heartbeat-seconds", env: "PARALLELS_HEARTBEAT_SECONDS", help: "Seconds between heartbeats. Default: what the control plane says at registration (15)." },
  pullExpiresSeconds: { flag: "pull-expires-seconds", env: "PARALLELS_PULL_EXPIRES_SECONDS", help: "Lifetime of one JetStream pull request (1–300). Default 30." },
  unhealthyAfterSeconds: { flag: "unhealthy-after-seconds", env: "PARALLELS_UNHEALTHY_AFTER_SECONDS", help: "/healthz fails when nothing was pulled for this long. Default 3 × the pull expiry." },
  maxConcurrentAttempts: {
    flag: "max-concurrent-attempts",
    env: "PARALLELS_MAX_CONCURRENT_ATTEMPTS",
    help: "Attempts running at once on this cluster; more wait (in NATS, with in-progress acks). Default 8.",
  },
  mlflowTrackingUri: { flag: "mlflow-tracking-uri", env: "MLFLOW_TRACKING_URI", help: "MLflow tracking server the steps log to (http or https). Required by the local executor." },
  projectsRoot: { flag: "projects-root", env: "PARALLELS_PROJECTS_ROOT", help: "Local executor: relative project paths and inputs resolve here. Default the working directory." },
  pythonBinDir: { flag: "python-bin-dir", env: "PARALLELS_PYTHON_BIN_DIR", help: "Local executor: a Python environment's bin folder, put first on the steps' PATH." },
  maxProcesses: { flag: "max-processes", env: "PARALLELS_MAX_PROCESSES", help: "Local executor: step processes running at once over all attempts. Default the number of CPUs." },
  stepsMlflowCredentials: {
    flag: "steps-mlflow-credentials",
    env: "PARALLELS_STEPS_MLFLOW_CREDENTIALS",
    boolean: true,
    help: "Local executor: pass MLFLOW_TRACKING_TOKEN / MLFLOW_TRACKING_PASSWORD of the agent's environment to the steps (default: removed, like every PARALLELS_* variable).",
  },
  logLevel: { flag: "log-level", env: "PARALLELS_LOG_LEVEL", help: "trace, debug, info, warn, error or fatal. Default info." },
  kubeconfig: {
    flag: "kubeconfig",
    env: "PARALLELS_KUBECONFIG",
    help: "Kubernetes executor: a kubeconfig (token auth) to reach the API server from outside the cluster. Default: the pod's ServiceAccount.",
  },
  namespace: { flag: "namespace", env: "PARALLELS_NAMESPACE", help: "Kubernetes executor: the namespace of the work Jobs. Default the agent pod's namespace (or the kubeconfig's)." },
  agentImage: {
    flag: "agent-image",
    env: "PARALLELS_AGENT_IMAGE",
    help: "Kubernetes executor: this agent's image, run by the work pods' init container and sidecar. Required by the kubernetes executor.",
  },
  credentialsSecret: {
    flag: "credentials-secret",
    env: "PARALLELS_CREDENTIALS_SECRET",
    help: "Kubernetes executor: keep the agent's credentials in this Secret ([namespace/]name; the chart makes it) instead of the state dir.",
  },
  workServiceAccount: { flag: "work-service-account", env: "PARALLELS_WORK_SERVICE_ACCOUNT", help: "Kubernetes executor: the ServiceAccount of the work pods (no token is mounted)." },
  workNodeSelector: { flag: "work-node-selector", env: "PARALLELS_WORK_NODE_SELECTOR", help: "Kubernetes executor: node labels every work pod needs, as a JSON object." },
  workTolerations: { flag: "work-tolerations", env: "PARALLELS_WORK_TOLERATIONS", help: "Kubernetes executor: tolerations of every work pod, as a JSON array." },
  gpuTolerations: {
    flag: "gpu-tolerations",
    env: "PARALLELS_GPU_TOLERATIONS",
    help: "Kubernetes executor: tolerations added to pods of steps that request GPUs, as a JSON array. Default: nvidia.com/gpu Exists NoSchedule.",
  },
  workImagePullSecrets: { flag: "work-image-pull-secrets", env: "PARALLELS_WORK_IMAGE_PULL_SECRETS", help: "Kubernetes executor: image pull Secrets of the work pods, comma-separated." },
  stepsMlflowSecret: {
    flag: "steps-mlflow-secret",
    env: "PARALLELS_STEPS_MLFLOW_SECRET",
    help: "Kubernetes executor: the Secret the work pods take their MLflow credentials from (never the agent's own).",
  },
  stepsMlflowTrackingUri: {
    flag: "steps-mlflow-tracking-uri",
    env: "PARALLELS_STEPS_MLFLOW_TRACKING_URI",
    help: "Kubernetes executor: MLflow as the work pods reach it. Default --mlflow-tracking-uri.",
  },
  workProxySecret: {
    flag: "work-proxy-secret",
    env: "PARALLELS_WORK_PROXY_SECRET",
    help: "Kubernetes executor: a Secret of the work namespace whose keys HTTPS_PROXY and HTTP_PROXY hold the proxy URLs of the pods the agent makes (needed when a URL holds a user:password: a pod spec is no place for it). Default: the agent's own HTTPS_PROXY/HTTP_PROXY, written as they are.",
  },
  workCaBundle: {
    flag: "work-ca-bundle",
    env: "PARALLELS_WORK_CA_BUNDLE",
    help: "Kubernetes executor: the CA bundle mounted in every pod the agent makes, configmap/<name>[/<key>] or secret/<name>[/<key>] of the work namespace (key default ca.crt); steps, builders and the pods' own programs trust it besides their own CAs.",
  },
  jobTtlSeconds: { flag: "job-ttl-seconds", env: "PARALLELS_JOB_TTL_SECONDS", help: "Kubernetes executor: ended Jobs are deleted this long after they end. Default 86400." },
  logsEverySeconds: { flag: "logs-every-seconds", env: "PARALLELS_LOGS_EVERY_SECONDS", help: "Seconds between uploads of a running step's logs to MLflow (where GET …/logs reads them). Default 30." },
  maxPartitionRuns: {
    flag: "max-partition-runs",
    env: "PARALLELS_MAX_PARTITION_RUNS",
    help: "Nested MLflow runs per partition up to this many partitions of a node; beyond, partitions log under the node's run, which holds a partitions table (parallels/partitions.json). Default 100.",
  },
  clusterName: { flag: "cluster-name", env: "PARALLELS_CLUSTER_NAME", help: "The cluster's name, for logs only (the control plane knows the cluster by its credentials)." },
  containers: {
    flag: "containers",
    env: "PARALLELS_CONTAINERS",
    help: "Local executor: run each step in its image with podman (built with buildah from the project's environment, as a cluster builds it): podman. Default: none (processes in the current Python environment).",
  },
  imageRegistry: {
    flag: "image-registry",
    env: "PARALLELS_IMAGE_REGISTRY",
    help: "Where built step images go and are looked for: host[:port] of an OCI registry. Required to build images on Kubernetes; the local executor keeps them in local storage without one.",
  },
  imageRepositoryPrefix: { flag: "image-repository-prefix", env: "PARALLELS_IMAGE_REPOSITORY_PREFIX", help: "Repository prefix of built images in the registry. Default mlflow-parallels." },
  imageRegistryPlainHttp: {
    flag: "image-registry-plain-http",
    env: "PARALLELS_IMAGE_REGISTRY_PLAIN_HTTP",
    boolean: true,
    help: "The image registry speaks plain HTTP (a registry on 127.0.0.1). Default false (HTTPS).",
  },
  imageRegistryAuth: {
    flag: "image-registry-auth",
    env: "PARALLELS_IMAGE_REGISTRY_AUTH",
    help: "A Docker config.json with the registry's credentials, for the agent's registry checks (the chart mounts the registry Secret there).",
  },
  imageRegistrySecret: {
    flag: "image-registry-secret",
    env: "PARALLELS_IMAGE_REGISTRY_SECRET",
    help: "Kubernetes executor: the Secret (kubernetes.io/dockerconfigjson, work namespace) the build pods push with.",
  },
  imageBuilder: { flag: "image-builder", env: "PARALLELS_IMAGE_BUILDER", help: "Kubernetes executor: what builds images in the cluster: buildkit (rootless, daemonless) or kaniko. Default buildkit." },
  builderImage: {
    flag: "builder-image",
    env: "PARALLELS_BUILDER_IMAGE",
    help: "Kubernetes executor: the builder's image. Default moby/buildkit:v0.34.2-rootless or the Kaniko fork's, from the base images' registry.",
  },
  baseImages: {
    flag: "base-images",
    env: "PARALLELS_BASE_IMAGES",
    help: 'Where base images come from (JSON: registry, pythonRepository, pythonTag with {python}/{minor}, pythonTags, micromamba, defaultPython); air-gapped sites name their mirror. Default {"registry":"docker.io","pythonRepository":"library/python","pythonTag":"{python}-slim",…}.',
  },
  extraCaBundle: {
    flag: "extra-ca-bundle",
    env: "PARALLELS_EXTRA_CA_BUNDLE",
    help: "PEM file of extra CAs the image builds trust (a TLS-inspecting proxy before the package index), given to their RUN steps as a build secret. Default NODE_EXTRA_CA_CERTS (the chart's CA).",
  },
  buildTimeoutSeconds: { flag: "build-timeout-seconds", env: "PARALLELS_BUILD_TIMEOUT_SECONDS", help: "An image build taking longer fails. Default 3600." },
} as const satisfies Record<string, Setting>;

type Key = keyof typeof SETTINGS;

const httpUrl = z
  .string()
  .trim()
  .refine((s) => URL.canParse(s) && ["http:", "https:"].includes(new URL(s).protocol) && new URL(s).hostname !== "", {
    error: (i) => `expected an http:// or https:// URL, got ${JSON.stringify(i.input)}`,
  })
  .refine((s) => !URL.canParse(s) || (new URL(s).username === "" && new URL(s).password === ""), { error: "must not contain a user or password" })
  .transform((s) => s.replace(/\/+$/, ""));

const natsUrls = z
  .string()
  .transform((s) =>
    s
      .split(",")
      .map((x) => x.trim())
      .filter(Boolean),
  )
  .superRefine((list, ctx) => {
    if (list.length === 0) ctx.addIssue({ code: "custom", message: "expected at least one NATS URL" });
    const problems = list.map(natsUrlProblem).filter((p) => p !== null);
    for (const message of problems) ctx.addIssue({ code: "custom", message });
    if (problems.length === 0 && new Set(list.map(natsTransportOf)).size > 1)
      ctx.addIssue({ code: "custom", message: `${JSON.stringify(list.join(","))} mixes TCP (nats://, tls://) and WebSocket (ws://, wss://) URLs; use one kind` });
  });

/** A JSON value in a flag or variable, checked against `schema`. */
const jsonOf = <T extends z.ZodType>(schema: T) =>
  z
    .string()
    .transform((s, ctx) => {
      try {
        return JSON.parse(s) as unknown;
      } catch (e) {
        ctx.addIssue({ code: "custom", message: `not JSON: ${(e as Error).message}` });
        return z.NEVER;
      }
    })
    .pipe(schema);

const intIn = (min: number, max: number) =>
  z.coerce
    .number({ error: "expected a number" })
    .int({ error: `expected an integer from ${min} to ${max}` })
    .min(min, { error: `expected an integer from ${min} to ${max}` })
    .max(max, { error: `expected an integer from ${min} to ${max}` });

const Schema = z
  .object({
    controlPlaneUrl: httpUrl,
    bootstrapToken: z.string().trim().min(1).max(200).optional(),
    stateDir: z
      .string()
      .min(1)
      .default(".state/agent")
      .transform((s) => resolve(s)),
    executor: z.enum(["local", "kubernetes"], { error: (i) => `unknown executor ${JSON.stringify(i.input)}; available: local, kubernetes` }).default("local"),
    natsUrl: natsUrls.optional(),
    healthHost: z.string().min(1).default("127.0.0.1"),
    healthPort: intIn(0, 65535).default(9464),
    heartbeatSeconds: intIn(1, 3600).optional(),
    pullExpiresSeconds: intIn(1, 300).default(30),
    unhealthyAfterSeconds: intIn(1, 86_400).optional(),
    maxConcurrentAttempts: intIn(1, 10_000).default(8),
    mlflowTrackingUri: httpUrl.optional(),
    projectsRoot: z
      .string()
      .min(1)
      .transform((s) => resolve(s))
      .optional(),
    pythonBinDir: z
      .string()
      .min(1)
      .transform((s) => resolve(s))
      .optional(),
    maxProcesses: intIn(1, 100_000).optional(),
    stepsMlflowCredentials: z
      .union([z.boolean(), z.enum(["true", "1", "yes", "false", "0", "no"], { error: "expected true or false" })])
      .default(false)
      .transform((v) => v === true || v === "true" || v === "1" || v === "yes"),
    logLevel: z.enum(["trace", "debug", "info", "warn", "error", "fatal"], { error: (i) => `unknown log level ${JSON.stringify(i.input)}` }).default("info"),
    kubeconfig: z
      .string()
      .min(1)
      .transform((s) => resolve(s))
      .optional(),
    namespace: z
      .string()
      .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "expected a namespace name")
      .max(63)
      .optional(),
    agentImage: z.string().regex(IMAGE_REF, "expected an image reference").optional(),
    credentialsSecret: z
      .string()
      .regex(/^([a-z0-9]([-a-z0-9]*[a-z0-9])?\/)?[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/, "expected [namespace/]name of a Secret")
      .optional(),
    workServiceAccount: z.string().min(1).max(253).optional(),
    workNodeSelector: jsonOf(NodeSelectorSchema).default({}),
    workTolerations: jsonOf(z.array(TolerationSchema)).default([]),
    gpuTolerations: jsonOf(z.array(TolerationSchema)).default([{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }]),
    workImagePullSecrets: z
      .string()
      .transform((s) =>
        s
          .split(",")
          .map((x) => x.trim())
          .filter(Boolean),
      )
      .default([]),
    stepsMlflowSecret: z.string().min(1).max(253).optional(),
    stepsMlflowTrackingUri: httpUrl.optional(),
    workProxySecret: z
      .string()
      .regex(/^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/, "expected the name of a Secret")
      .max(253)
      .optional(),
    workCaBundle: z
      .string()
      .transform((s, ctx) => {
        const ca = parseWorkCaBundle(s);
        if (ca) return ca;
        ctx.addIssue({ code: "custom", message: `expected configmap/<name>[/<key>] or secret/<name>[/<key>], got ${JSON.stringify(s)}` });
        return z.NEVER;
      })
      .optional(),
    jobTtlSeconds: intIn(0, 365 * 86_400).default(86_400),
    maxPartitionRuns: intIn(0, 100_000).default(100),
    logsEverySeconds: intIn(1, 3600).default(30),
    clusterName: z.string().max(63).optional(),
    containers: z.enum(["podman"], { error: (i) => `unknown container runtime ${JSON.stringify(i.input)}; available: podman` }).optional(),
    imageRegistry: z
      .string()
      .trim()
      .regex(/^[A-Za-z0-9.-]+(:\d+)?(\/[a-z0-9._-]+)*$/, "expected host[:port] of a registry (no scheme)")
      .optional(),
    imageRepositoryPrefix: z
      .string()
      .regex(/^[a-z0-9]+([._-][a-z0-9]+)*(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/, "expected a repository path such as mlflow-parallels or team/ml")
      .default("mlflow-parallels"),
    imageRegistryPlainHttp: z
      .union([z.boolean(), z.enum(["true", "1", "yes", "false", "0", "no"], { error: "expected true or false" })])
      .default(false)
      .transform((v) => v === true || v === "true" || v === "1" || v === "yes"),
    imageRegistryAuth: z
      .string()
      .min(1)
      .transform((s) => resolve(s))
      .optional(),
    imageRegistrySecret: z.string().min(1).max(253).optional(),
    imageBuilder: z.enum(["buildkit", "kaniko"], { error: (i) => `unknown image builder ${JSON.stringify(i.input)}; available: buildkit, kaniko` }).default("buildkit"),
    builderImage: z.string().regex(IMAGE_REF, "expected an image reference").optional(),
    baseImages: jsonOf(
      z.strictObject({
        registry: z.string().min(1).optional(),
        pythonRepository: z.string().min(1).optional(),
        pythonTag: z.string().min(1).optional(),
        pythonTags: z.record(z.string(), z.string()).optional(),
        micromamba: z.string().min(1).optional(),
        defaultPython: z
          .string()
          .regex(/^\d+(\.\d+){0,2}$/, "expected a Python version such as 3.11")
          .optional(),
      }),
    ).default({}),
    extraCaBundle: z
      .string()
      .min(1)
      .transform((s) => resolve(s))
      .optional(),
    buildTimeoutSeconds: intIn(60, 7 * 86_400).default(3600),
  })
  .superRefine((c, ctx) => {
    if (c.containers && c.executor !== "local") ctx.addIssue({ code: "custom", path: ["containers"], message: "is for the local executor (on Kubernetes, steps always run in images)" });
    if (!c.mlflowTrackingUri) ctx.addIssue({ code: "custom", path: ["mlflowTrackingUri"], message: `is required by the ${c.executor} executor (the steps log their runs there)` });
    if (c.executor === "kubernetes" && !c.agentImage)
      ctx.addIssue({ code: "custom", path: ["agentImage"], message: "is required by the kubernetes executor (the work pods run it to fetch inputs and upload outputs)" });
  })
  .transform((c) => ({ ...c, unhealthyAfterSeconds: c.unhealthyAfterSeconds ?? 3 * c.pullExpiresSeconds, credentialsPath: join(c.stateDir, CREDENTIALS_FILE) }));

export type AgentConfig = z.infer<typeof Schema> & {
  /** HTTPS_PROXY / HTTP_PROXY / NO_PROXY (proxy.ts), or null: every request goes directly. */
  proxy: ProxySettings | null;
  /** NO_PROXY entries the agent cannot honour (CIDR ranges), to warn about. */
  ignoredNoProxy: string[];
};

export const HELP = [
  "Usage: parallels-agent [flags]   (every flag also reads the environment variable shown)",
  "",
  ...Object.values(SETTINGS).map((s: Setting) => `  --${s.flag.padEnd(26)} ${s.env}\n      ${s.help}`),
  "  --help",
  "",
  "Also read from the environment:",
  "  HTTPS_PROXY, HTTP_PROXY, NO_PROXY (or lower case)",
  "      The proxy of every request of the agent (control plane, MLflow, NATS over ws:// or wss://), as CONNECT",
  "      tunnels: https/wss go to HTTPS_PROXY (else HTTP_PROXY), http/ws to HTTP_PROXY. NO_PROXY: hosts, .domain",
  "      suffixes, IPs or *, reached directly. Steps and git inherit them. Plain nats:// and tls:// do not use them.",
  "  NODE_EXTRA_CA_CERTS",
  "      PEM file of CAs trusted besides Node's own (a TLS-inspecting proxy, a private CA).",
].join("\n");

/** The first proxy variable whose URL holds credentials (the proxy.ts reading order), by name. */
function proxyWithCredentials(env: NodeJS.ProcessEnv): string | undefined {
  return ["https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"].find((name) => {
    const v = env[name];
    if (!v) return false;
    const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(v) ? v : `http://${v}`;
    return URL.canParse(withScheme) && (new URL(withScheme).username !== "" || new URL(withScheme).password !== "");
  });
}

export interface LoadOptions {
  /** Whether credentials are stored already (then no bootstrap token is needed). Default: the credentials file exists. */
  hasStoredCredentials?: (config: AgentConfig) => boolean;
}

/**
 * Reads flags (`argv` without the node/script prefix) and `env`. Returns `"help"` for `--help`.
 * Throws {@link ConfigError} listing every problem.
 */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv, opts: LoadOptions = {}): AgentConfig | "help" {
  const options = Object.fromEntries(Object.values(SETTINGS).map((s: Setting) => [s.flag, { type: s.boolean ? ("boolean" as const) : ("string" as const) }]));
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options: { ...options, help: { type: "boolean" } }, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new ConfigError(`${(err as Error).message.replace(/\. To specify.*$/s, "")} (see --help)`);
  }
  if (values.help) return "help";
  const raw: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(SETTINGS) as [Key, Setting][]) {
    const v = values[s.flag] ?? env[s.env];
    if (v !== undefined && v !== "") raw[key] = v;
  }
  // The chart's CA (NODE_EXTRA_CA_CERTS: the agent trusts it) is the builds' extra CA too, unless another is named.
  if (raw.extraCaBundle === undefined && env.NODE_EXTRA_CA_CERTS) raw.extraCaBundle = env.NODE_EXTRA_CA_CERTS;
  const parsed = Schema.safeParse(raw);
  const proxy = proxyFromEnv(env);
  if (!parsed.success || proxy.problems.length > 0) {
    const problems = (parsed.error?.issues ?? []).map((i) => {
      const key = i.path[0] as Key | undefined;
      const where = key && SETTINGS[key] ? `--${SETTINGS[key].flag} (${SETTINGS[key].env})` : "configuration";
      const message = i.code === "invalid_type" && i.input === undefined ? "is required" : i.message;
      return `${where}: ${message}`;
    });
    throw new ConfigError("invalid configuration", [...problems, ...proxy.problems]);
  }
  const config: AgentConfig = { ...parsed.data, proxy: proxy.settings, ignoredNoProxy: proxy.ignoredNoProxy };
  const leaked = config.executor === "kubernetes" && !config.workProxySecret ? proxyWithCredentials(env) : undefined;
  if (leaked) {
    throw new ConfigError("invalid configuration", [
      `${leaked}: holds a user or password, which the pods the agent makes would carry in their spec; put the proxy URLs in a Secret of the work namespace (keys HTTPS_PROXY, HTTP_PROXY) and name it with --${SETTINGS.workProxySecret.flag} (${SETTINGS.workProxySecret.env})`,
    ]);
  }
  // In a Secret they can only be looked for once the agent runs; registration says it if they are missing.
  const stored = (opts.hasStoredCredentials ?? ((c) => (c.executor === "kubernetes" && c.credentialsSecret !== undefined) || existsSync(c.credentialsPath)))(config);
  if (!config.bootstrapToken && !stored) {
    throw new ConfigError("invalid configuration", [
      `--${SETTINGS.bootstrapToken.flag} (${SETTINGS.bootstrapToken.env}): is required: no stored credentials in ${config.credentialsPath}; get a token with POST /v1/clusters (or /v1/clusters/<name>/bootstrap)`,
    ]);
  }
  return config;
}
