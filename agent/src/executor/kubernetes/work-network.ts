/**
 * @module
 * The way out of the pods the agent makes (work pods and image build pods), where the site's only
 * way out is an HTTP(S) proxy and a TLS-inspecting proxy or a private CA signs what they reach:
 * one home for what every such container gets.
 *
 * - **Proxy**: `HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY` and their lower-case forms (Python's
 *   requests and pip, curl and Go read either; some tools only the lower case). A proxy URL may
 *   hold `user:password`, so the URLs come from a Secret of the work namespace through
 *   `secretKeyRef` (keys `HTTPS_PROXY`, `HTTP_PROXY`, each optional) — a pod spec is readable by
 *   whoever may list pods, and is never a place for a password. Without such a Secret the agent's
 *   own URLs are written as they are, which the configuration allows only when they hold no
 *   credentials (config.ts). `NO_PROXY` is the agent's own plus the cluster's service domains and
 *   the API server (`$(KUBERNETES_SERVICE_HOST)`, expanded by the kubelet), so traffic inside the
 *   cluster never goes to the proxy.
 * - **CA bundle**: the ConfigMap or Secret the chart names, mounted read-only at {@link WORK_CA_DIR}
 *   in every container, and pointed to by what each runtime reads — additively wherever the
 *   runtime allows it, so the public CAs are still trusted:
 *   - our Node programs (`pod fetch`, `pod upload`, `pod build-context`): `NODE_EXTRA_CA_CERTS`
 *     (added to Node's own CAs);
 *   - the step (any image): `SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`, `PIP_CERT`, `CURL_CA_BUNDLE`
 *     name a bundle the step's wrapper writes before the step starts — the image's own CAs plus
 *     ours (these variables replace a runtime's CAs, so the file holds both); `NODE_EXTRA_CA_CERTS`
 *     names ours alone. A node's own `env` setting one of them wins.
 *   - BuildKit and Kaniko (Go): `SSL_CERT_DIR` = the image's certificate folder plus
 *     {@link WORK_CA_DIR}: Go reads every file of every folder listed, besides its default file,
 *     so base image pulls, cache and pushes trust both. (The builds' RUN steps get the same CA as
 *     a build secret: build-job.ts.)
 */
import type { V1EnvVar, V1Volume, V1VolumeMount } from "@kubernetes/client-node";

/** Where the work pods' proxy URLs are: a Secret, or the URLs themselves (credential-free). */
export type WorkProxy = { secret: string; noProxy: string } | { httpsProxy: string | null; httpProxy: string | null; noProxy: string };

/** The CA bundle's ConfigMap or Secret (in the work namespace) and its key. */
export interface WorkCaBundle {
  kind: "configMap" | "secret";
  name: string;
  key: string;
}

export interface WorkNetwork {
  proxy?: WorkProxy;
  ca?: WorkCaBundle;
}

/** The Secret keys of {@link WorkProxy} `secret`. */
export const PROXY_SECRET_KEYS = ["HTTPS_PROXY", "HTTP_PROXY"] as const;
/** Reached directly whatever the agent's own NO_PROXY says: inside the pod, the cluster's services, the API server. */
export const IN_CLUSTER_NO_PROXY = ["localhost", "127.0.0.1", ".svc", ".cluster.local", "$(KUBERNETES_SERVICE_HOST)"] as const;
export const WORK_CA_DIR = "/etc/parallels/ca";
export const WORK_CA_FILE = `${WORK_CA_DIR}/ca.crt`;
/** The step's wrapper reads the CA from here, and writes the image's CAs plus it to {@link stepCaBundlePath}. */
export const STEP_EXTRA_CA_ENV = "PARALLELS_EXTRA_CA_FILE";
/** The variables that name one CA file replacing a runtime's defaults (hence a combined bundle). */
export const STEP_CA_VARS = ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT", "CURL_CA_BUNDLE"] as const;
const CA_VOLUME = "parallels-ca";

/** `--work-ca-bundle`: `configmap/<name>[/<key>]` or `secret/<name>[/<key>]` (key default `ca.crt`); null when malformed. */
export function parseWorkCaBundle(s: string): WorkCaBundle | null {
  const m = /^(configmap|secret)\/([a-z0-9]([-.a-z0-9]*[a-z0-9])?)(?:\/([-._a-zA-Z0-9]+))?$/i.exec(s.trim());
  if (!m) return null;
  return { kind: m[1]!.toLowerCase() === "secret" ? "secret" : "configMap", name: m[2]!, key: m[4] ?? "ca.crt" };
}

/** The agent's NO_PROXY plus {@link IN_CLUSTER_NO_PROXY}, once each. */
export function workNoProxy(agentNoProxy: string): string {
  const own = agentNoProxy
    .split(",")
    .map((e) => e.trim())
    .filter(Boolean);
  return [...new Set([...own, ...IN_CLUSTER_NO_PROXY])].join(",");
}

/** The proxy variables, upper and lower case. */
export function proxyEnv(p: WorkProxy | undefined): V1EnvVar[] {
  if (!p) return [];
  const pair = (name: string, v: Omit<V1EnvVar, "name">): V1EnvVar[] => [
    { name, ...v },
    { name: name.toLowerCase(), ...v },
  ];
  const urls =
    "secret" in p
      ? PROXY_SECRET_KEYS.flatMap((key) => pair(key, { valueFrom: { secretKeyRef: { name: p.secret, key, optional: true } } }))
      : [...(p.httpsProxy ? pair("HTTPS_PROXY", { value: p.httpsProxy }) : []), ...(p.httpProxy ? pair("HTTP_PROXY", { value: p.httpProxy }) : [])];
  return [...urls, ...pair("NO_PROXY", { value: p.noProxy })];
}

export function caVolumes(ca: WorkCaBundle | undefined): V1Volume[] {
  if (!ca) return [];
  const items = [{ key: ca.key, path: "ca.crt" }];
  return [ca.kind === "secret" ? { name: CA_VOLUME, secret: { secretName: ca.name, items } } : { name: CA_VOLUME, configMap: { name: ca.name, items } }];
}

export const caMounts = (ca: WorkCaBundle | undefined): V1VolumeMount[] => (ca ? [{ name: CA_VOLUME, mountPath: WORK_CA_DIR, readOnly: true }] : []);

/** Where the step's wrapper writes the combined bundle, in the pod's work dir. */
export const stepCaBundlePath = (podDir: string) => `${podDir}/run/ca-bundle.pem`;

/** What a container of the given runtime reads to trust the bundle. `goCertDir`: the builder image's own certificate folder. */
export function caEnv(ca: WorkCaBundle | undefined, runtime: { node: true } | { step: string } | { goCertDir: string }): V1EnvVar[] {
  if (!ca) return [];
  if ("node" in runtime) return [{ name: "NODE_EXTRA_CA_CERTS", value: WORK_CA_FILE }];
  if ("goCertDir" in runtime) return [{ name: "SSL_CERT_DIR", value: `${runtime.goCertDir}:${WORK_CA_DIR}` }];
  const bundle = stepCaBundlePath(runtime.step);
  return [{ name: STEP_EXTRA_CA_ENV, value: WORK_CA_FILE }, ...STEP_CA_VARS.map((name) => ({ name, value: bundle })), { name: "NODE_EXTRA_CA_CERTS", value: WORK_CA_FILE }];
}

/**
 * The step wrapper's lines (POSIX sh, any image) that write the combined bundle: the image's own
 * CAs (Debian/Alpine, then Red Hat's, then certifi's as pip vendors it) followed by ours. Nothing
 * when the pod has no CA bundle.
 */
export const STEP_CA_LINES = [
  `if [ -s "\${${STEP_EXTRA_CA_ENV}:-}" ]; then`,
  '  for f in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt /etc/ssl/cert.pem; do [ -s "$f" ] && { default=$f; break; }; done',
  `  [ -n "\${default:-}" ] || default=$(python3 -c 'from pip._vendor import certifi; print(certifi.where())' 2>/dev/null || true)`,
  // A newline between the two: a bundle whose last line has none would spoil the first certificate of ours.
  `  { if [ -n "\${default:-}" ]; then cat "$default"; echo; fi; cat "$${STEP_EXTRA_CA_ENV}"; } >"$root/run/ca-bundle.pem"`,
  "fi",
];
