import { describe, expect, it } from "vitest";
import { ConfigError, HELP, loadConfig, type AgentConfig } from "./config";

const base = { PARALLELS_CONTROL_PLANE_URL: "http://127.0.0.1:8787", PARALLELS_BOOTSTRAP_TOKEN: "plb_x", MLFLOW_TRACKING_URI: "http://127.0.0.1:5000" };
const noStore = { hasStoredCredentials: () => false };
const load = (argv: string[], env: Record<string, string> = base, opts = noStore) => loadConfig(argv, env, opts) as AgentConfig;
const problems = (argv: string[], env: Record<string, string> = base, opts = noStore): string[] => {
  try {
    loadConfig(argv, env, opts);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems.length ? (err as ConfigError).problems : [(err as Error).message];
  }
  throw new Error("expected a ConfigError");
};

describe("agent configuration", () => {
  it("reads the environment, applies defaults, and flags win over the environment", () => {
    const c = load([]);
    expect(c).toMatchObject({
      controlPlaneUrl: "http://127.0.0.1:8787",
      bootstrapToken: "plb_x",
      executor: "local",
      healthHost: "127.0.0.1",
      healthPort: 9464,
      pullExpiresSeconds: 30,
      unhealthyAfterSeconds: 90,
      maxConcurrentAttempts: 8,
      logLevel: "info",
    });
    expect(c.stateDir).toMatch(/\/\.state\/agent$/);
    expect(c.credentialsPath).toBe(`${c.stateDir}/credentials.json`);
    const f = load([
      "--control-plane-url",
      "https://cp.example.test/",
      "--health-port",
      "0",
      "--pull-expires-seconds",
      "2",
      "--nats-url",
      "nats://127.0.0.1:4222, tls://nats.example.test:4443",
      "--log-level",
      "debug",
    ]);
    expect(f).toMatchObject({
      controlPlaneUrl: "https://cp.example.test",
      healthPort: 0,
      pullExpiresSeconds: 2,
      unhealthyAfterSeconds: 6,
      natsUrl: ["nats://127.0.0.1:4222", "tls://nats.example.test:4443"],
      logLevel: "debug",
    });
  });

  it("rejects a bad control-plane URL, naming the flag and the variable", () => {
    expect(problems(["--control-plane-url", "ftp://cp.example.test"])).toEqual(['--control-plane-url (PARALLELS_CONTROL_PLANE_URL): expected an http:// or https:// URL, got "ftp://cp.example.test"']);
    expect(problems([], { ...base, PARALLELS_CONTROL_PLANE_URL: "not a url" })[0]).toMatch(/^--control-plane-url \(PARALLELS_CONTROL_PLANE_URL\): expected an http/);
    expect(problems([], { MLFLOW_TRACKING_URI: base.MLFLOW_TRACKING_URI, PARALLELS_BOOTSTRAP_TOKEN: "x" })).toEqual(["--control-plane-url (PARALLELS_CONTROL_PLANE_URL): is required"]);
  });

  it("rejects a bad NATS URL override", () => {
    expect(problems(["--nats-url", "http://127.0.0.1:4222"])).toEqual(['--nats-url (PARALLELS_NATS_URL): "http://127.0.0.1:4222": expected nats://, tls://, ws:// or wss://, got http://']);
    expect(problems(["--nats-url", "wss://agent:secret@nats.example.test"])[0]).toMatch(/^--nats-url \(PARALLELS_NATS_URL\): .* must not contain a user or password/);
    expect(problems(["--nats-url", "nats://127.0.0.1:4222,nats://:4222/x"])[0]).toMatch(/--nats-url .*"nats:\/\/:4222\/x"/);
    expect(problems(["--nats-url", " , "])).toEqual(["--nats-url (PARALLELS_NATS_URL): expected at least one NATS URL"]);
    expect(load(["--nats-url", "127.0.0.1:4222"]).natsUrl).toEqual(["127.0.0.1:4222"]);
  });

  it("takes NATS over WebSocket (ws://, wss://, with a path behind an ingress), but not mixed with TCP", () => {
    expect(load([], { ...base, PARALLELS_NATS_URL: "wss://nats.example.test/ws, wss://nats2.example.test:8443" }).natsUrl).toEqual(["wss://nats.example.test/ws", "wss://nats2.example.test:8443"]);
    expect(load(["--nats-url", "ws://127.0.0.1:4280"]).natsUrl).toEqual(["ws://127.0.0.1:4280"]);
    expect(problems(["--nats-url", "nats://127.0.0.1:4222,wss://nats.example.test"])).toEqual([
      '--nats-url (PARALLELS_NATS_URL): "nats://127.0.0.1:4222,wss://nats.example.test" mixes TCP (nats://, tls://) and WebSocket (ws://, wss://) URLs; use one kind',
    ]);
    expect(problems(["--nats-url", "tls://nats.example.test/x"])[0]).toMatch(/"tls:\/\/nats.example.test\/x" must not have a path/);
  });

  it("reads the proxy from HTTPS_PROXY / HTTP_PROXY / NO_PROXY (lower case first); none: null", () => {
    expect(load([]).proxy).toBeNull();
    const c = load([], { ...base, HTTPS_PROXY: "http://proxy.example.test:3128", HTTP_PROXY: "proxy.example.test:3129", NO_PROXY: " localhost, .svc ,10.0.0.0/8" });
    expect(c.proxy).toEqual({ httpsProxy: "http://proxy.example.test:3128", httpProxy: "http://proxy.example.test:3129", noProxy: "localhost,.svc,10.0.0.0/8" });
    expect(c.ignoredNoProxy).toEqual(["10.0.0.0/8"]);
    expect(load([], { ...base, https_proxy: "http://lower.example.test:1", HTTPS_PROXY: "http://upper.example.test:2" }).proxy).toEqual({
      httpsProxy: "http://lower.example.test:1",
      httpProxy: null,
      noProxy: "",
    });
    // NO_PROXY alone is no proxy.
    expect(load([], { ...base, NO_PROXY: "localhost" }).proxy).toBeNull();
  });

  it("refuses a bad proxy URL, naming the variable and never showing its password", () => {
    const list = problems([], { ...base, HTTPS_PROXY: "socks5://user:hunter2@proxy.example.test:1080", http_proxy: "http://user:hunter2@" });
    expect(list).toEqual(["HTTPS_PROXY: expected an http:// or https:// proxy URL, got socks5://", expect.stringMatching(/^http_proxy: /)]);
    for (const p of list) expect(p).not.toContain("hunter2");
  });

  it("needs a bootstrap token only while no credentials are stored", () => {
    const env = { PARALLELS_CONTROL_PLANE_URL: base.PARALLELS_CONTROL_PLANE_URL, MLFLOW_TRACKING_URI: base.MLFLOW_TRACKING_URI };
    const [problem] = problems(["--state-dir", "/tmp/nowhere"], env);
    expect(problem).toMatch(/^--bootstrap-token \(PARALLELS_BOOTSTRAP_TOKEN\): is required: no stored credentials in \/tmp\/nowhere\/credentials.json/);
    expect(load([], env, { hasStoredCredentials: () => true }).bootstrapToken).toBeUndefined();
  });

  it("lists every problem at once, and refuses unknown flags and values", () => {
    const list = problems(["--health-port", "70000", "--log-level", "loud", "--max-concurrent-attempts", "0", "--executor", "slurm"]);
    expect(list).toEqual(
      expect.arrayContaining([
        '--executor (PARALLELS_EXECUTOR): unknown executor "slurm"; available: local, kubernetes',
        "--health-port (PARALLELS_HEALTH_PORT): expected an integer from 0 to 65535",
        "--max-concurrent-attempts (PARALLELS_MAX_CONCURRENT_ATTEMPTS): expected an integer from 1 to 10000",
        '--log-level (PARALLELS_LOG_LEVEL): unknown log level "loud"',
      ]),
    );
    expect(problems(["--contrl-plane-url", "x"])[0]).toMatch(/Unknown option '--contrl-plane-url'.*\(see --help\)/);
    expect(problems([], { ...base, MLFLOW_TRACKING_URI: "" })).toEqual(["--mlflow-tracking-uri (MLFLOW_TRACKING_URI): is required by the local executor (the steps log their runs there)"]);
  });

  it("the kubernetes executor needs the agent's image; its JSON settings are checked and named", () => {
    expect(problems(["--executor", "kubernetes"])).toEqual(["--agent-image (PARALLELS_AGENT_IMAGE): is required by the kubernetes executor (the work pods run it to fetch inputs and upload outputs)"]);
    const list = problems(["--executor", "kubernetes", "--agent-image", "registry.example.test/agent:1", "--work-node-selector", "{not json", "--work-tolerations", '[{"operator":"Sometimes"}]']);
    expect(list).toEqual([
      expect.stringMatching(/^--work-node-selector \(PARALLELS_WORK_NODE_SELECTOR\): not JSON/),
      expect.stringMatching(/^--work-tolerations \(PARALLELS_WORK_TOLERATIONS\): .*Equal/),
    ]);
    const ok = loadConfig(
      ["--executor", "kubernetes", "--agent-image", "registry.example.test/agent:1", "--work-node-selector", '{"pool":"cpu"}', "--work-image-pull-secrets", "a, b"],
      base,
    ) as AgentConfig;
    expect(ok).toMatchObject({
      workNodeSelector: { pool: "cpu" },
      workImagePullSecrets: ["a", "b"],
      gpuTolerations: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }],
      jobTtlSeconds: 86400,
      maxPartitionRuns: 100,
    });
  });

  it("the pods' proxy and CA bundle: a proxy URL with a password needs a Secret for the pods (never echoed); the CA bundle reference is checked", () => {
    const k8s = ["--executor", "kubernetes", "--agent-image", "registry.example.test/agent:1"];
    const leaky = { ...base, HTTPS_PROXY: "http://user:s3cret@proxy.corp.example:3128" };
    const [problem] = problems(k8s, leaky);
    expect(problem).toMatch(/^https_proxy|^HTTPS_PROXY: holds a user or password.*--work-proxy-secret \(PARALLELS_WORK_PROXY_SECRET\)/);
    expect(problem).not.toContain("s3cret");
    expect(load([...k8s, "--work-proxy-secret", "site-proxy"], leaky)).toMatchObject({ workProxySecret: "site-proxy" });
    // The local executor makes no pods: its steps inherit the agent's environment as before.
    expect(load([], leaky).proxy).not.toBeNull();
    expect(problems([...k8s, "--work-ca-bundle", "corp-ca"])).toEqual(['--work-ca-bundle (PARALLELS_WORK_CA_BUNDLE): expected configmap/<name>[/<key>] or secret/<name>[/<key>], got "corp-ca"']);
    expect(load(k8s, { ...base, PARALLELS_WORK_CA_BUNDLE: "configmap/corp-ca" }).workCaBundle).toEqual({ kind: "configMap", name: "corp-ca", key: "ca.crt" });
  });

  it("--help lists every flag with its variable", () => {
    expect(loadConfig(["--help"], {})).toBe("help");
    for (const s of [
      "--control-plane-url",
      "PARALLELS_CONTROL_PLANE_URL",
      "--bootstrap-token",
      "--nats-url",
      "--health-port",
      "--max-concurrent-attempts",
      "MLFLOW_TRACKING_URI",
      "HTTPS_PROXY",
      "NO_PROXY",
      "NODE_EXTRA_CA_CERTS",
      "wss://",
    ])
      expect(HELP).toContain(s);
  });
});
