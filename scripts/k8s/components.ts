/**
 * The command lines of the harness's components, with the corrections the verified recipe found
 * (design note `k8s-harness.md`, §2). Every listener is
 * 127.0.0.1; the controller-manager opens none. No secret is on any command line: the admin
 * token is in the static token file and in the kubeconfig, keys are files.
 */
import { join } from "node:path";
import type { Pki } from "./pki";

export interface Ports {
  etcdClient: number;
  etcdPeer: number;
  apiserver: number;
  scheduler: number;
  /** kwok's kubelet API (logs, exec), also its /healthz and /metrics. */
  kwok: number;
}

/** The order in which components start; `stop()` goes the other way, etcd last. */
export const COMPONENTS = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"] as const;
export type Component = (typeof COMPONENTS)[number];

/**
 * The controllers a Job, a Helm chart's Deployment and RBAC need. Left out on purpose: the
 * node-lifecycle-controller (nodes send no heartbeats: it would taint them NotReady after ~40 s)
 * and everything about real networking and storage.
 */
export const CONTROLLERS = [
  "job-controller",
  "garbage-collector-controller",
  "namespace-controller",
  "serviceaccount-controller",
  "serviceaccount-token-controller",
  "ttl-after-finished-controller",
  "pod-garbage-collector-controller",
  "root-ca-certificate-publisher-controller",
  // a chart's Deployment makes no pods without these two (helm install --wait times out)
  "deployment-controller",
  "replicaset-controller",
  // without it the built-in admin/edit/view ClusterRoles stay empty
  "clusterrole-aggregation-controller",
];

export const SERVICE_CIDR = "10.0.0.0/24";
/** kwok's fake pod IPs: its default 10.0.0.1/24 would overlap the service range. */
export const POD_CIDR = "10.244.0.1/16";

export function etcdArgs(runDir: string, ports: Ports): string[] {
  const client = `http://127.0.0.1:${ports.etcdClient}`;
  const peer = `http://127.0.0.1:${ports.etcdPeer}`;
  return [
    "--name=harness",
    `--data-dir=${join(runDir, "etcd")}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=harness=${peer}`,
    "--initial-cluster-state=new",
    // throw-away state: fsync only costs time
    "--unsafe-no-fsync",
    "--log-level=warn",
  ];
}

export function apiserverArgs(pki: Pki, ports: Ports): string[] {
  return [
    `--etcd-servers=http://127.0.0.1:${ports.etcdClient}`,
    "--bind-address=127.0.0.1",
    "--advertise-address=127.0.0.1",
    `--secure-port=${ports.apiserver}`,
    `--tls-cert-file=${pki.servingCert}`,
    `--tls-private-key-file=${pki.servingKey}`,
    `--client-ca-file=${pki.caCert}`,
    `--token-auth-file=${pki.tokenFile}`,
    "--authorization-mode=RBAC",
    "--service-account-issuer=https://kubernetes.default.svc",
    `--service-account-key-file=${pki.saPub}`,
    `--service-account-signing-key-file=${pki.saKey}`,
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    "--allow-privileged=true",
    // The plugin gives every new Node a not-ready:NoSchedule taint that only the (absent)
    // node-lifecycle-controller lifts: no pod would ever be scheduled.
    "--disable-admission-plugins=TaintNodesByCondition",
    // The lease reconciler would log every 10 s that 127.0.0.1 may not be an endpoint.
    "--endpoint-reconciler-type=none",
    // Logs and exec go apiserver → kwok at the node's InternalIP (127.0.0.1), never via a DNS
    // lookup of the node name; the serving certificate doubles as the kubelet client certificate,
    // and kwok's certificate is checked against the CA.
    "--kubelet-preferred-address-types=InternalIP",
    `--kubelet-client-certificate=${pki.servingCert}`,
    `--kubelet-client-key=${pki.servingKey}`,
    `--kubelet-certificate-authority=${pki.caCert}`,
    "--profiling=false",
  ];
}

/**
 * Client budgets and worker counts of the components. Unset, each component keeps its own
 * default — as the test suite runs it. Benchmarks raise them so that the API server (or the
 * machine), not a component's client, bounds how fast pods come and go: a component's client
 * waits in its token bucket (client-go's "Waited for … due to client-side throttling").
 */
export interface ComponentTuning {
  /** kube-controller-manager `--kube-api-qps` (default 20): the Job controller's pod creates, finalizer removals and status updates share it. */
  kubeApiQps?: number;
  /** kube-controller-manager `--kube-api-burst` (default 30). */
  kubeApiBurst?: number;
  /** kube-controller-manager `--concurrent-job-syncs` (default 5): Jobs synced at once (one Job is never synced by two workers). */
  concurrentJobSyncs?: number;
  /** kube-scheduler `--kube-api-qps` (default 50): one binding (POST pods/binding) per pod; its events go through a second client with the same budget. */
  schedulerApiQps?: number;
  /** kube-scheduler `--kube-api-burst` (default 100). */
  schedulerApiBurst?: number;
  /**
   * kwok's `podPlayStageParallelism` (KwokConfiguration; default 4): workers applying the pod
   * stages (Running, Succeeded…), each one status PATCH at a time. kwok's client has no rate
   * limiter of its own (v0.8.0 sets client-go's `NewFakeAlwaysRateLimiter`).
   */
  kwokPodWorkers?: number;
}

export function controllerManagerArgs(pki: Pki, kubeconfig: string, opts: ComponentTuning): string[] {
  return [
    `--kubeconfig=${kubeconfig}`,
    "--leader-elect=false",
    "--use-service-account-credentials=false",
    `--controllers=${CONTROLLERS.join(",")}`,
    `--service-account-private-key-file=${pki.saKey}`,
    `--root-ca-file=${pki.caCert}`,
    // no listener at all
    "--secure-port=0",
    "--profiling=false",
    ...(opts.kubeApiQps !== undefined ? [`--kube-api-qps=${opts.kubeApiQps}`] : []),
    ...(opts.kubeApiBurst !== undefined ? [`--kube-api-burst=${opts.kubeApiBurst}`] : []),
    ...(opts.concurrentJobSyncs !== undefined ? [`--concurrent-job-syncs=${opts.concurrentJobSyncs}`] : []),
  ];
}

export function schedulerArgs(pki: Pki, kubeconfig: string, ports: Ports, opts: ComponentTuning = {}): string[] {
  return [
    `--kubeconfig=${kubeconfig}`,
    // delegated authn/authz go to the apiserver with this kubeconfig too
    `--authentication-kubeconfig=${kubeconfig}`,
    `--authorization-kubeconfig=${kubeconfig}`,
    "--leader-elect=false",
    "--bind-address=127.0.0.1",
    `--secure-port=${ports.scheduler}`,
    // our certificate, so its /healthz is checked against the CA like everything else
    `--tls-cert-file=${pki.servingCert}`,
    `--tls-private-key-file=${pki.servingKey}`,
    "--profiling=false",
    // Deprecated flags, but the scheduler still reads them when it has no --config file.
    ...(opts.schedulerApiQps !== undefined ? [`--kube-api-qps=${opts.schedulerApiQps}`] : []),
    ...(opts.schedulerApiBurst !== undefined ? [`--kube-api-burst=${opts.schedulerApiBurst}`] : []),
  ];
}

/**
 * A KwokConfiguration document with `podWorkers` stage workers. kwok (v0.8.0) applies no
 * defaults to a configuration read from a file — an absent field is zero or false, which would
 * turn its log server off and make it refuse a parallelism of 0 — so every option its defaults
 * set (`SetObjectDefaults_KwokConfiguration`) is written out here, with their default values.
 */
export function kwokConfigurationYaml(podWorkers: number): string {
  return [
    "apiVersion: config.kwok.x-k8s.io/v1alpha1",
    "kind: KwokConfiguration",
    "options:",
    `  cidr: ${JSON.stringify(POD_CIDR)}`,
    "  manageAllNodes: false",
    "  enableDebuggingHandlers: true",
    "  enableContentionProfiling: false",
    "  enableProfilingHandler: true",
    `  podPlayStageParallelism: ${podWorkers}`,
    "  nodePlayStageParallelism: 4",
    "  nodeLeaseParallelism: 4",
    "  podsOnNodeSyncParallelism: 1",
    "  enablePodsOnNodeSyncListPager: true",
    "  enablePodsOnNodeSyncStreamWatch: false",
    "",
  ].join("\n");
}

export function kwokArgs(pki: Pki, kubeconfig: string, ports: Ports, configs: string[]): string[] {
  return [
    `--kubeconfig=${kubeconfig}`,
    ...configs.map((c) => `--config=${c}`),
    "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
    "--node-ip=127.0.0.1",
    `--node-port=${ports.kwok}`,
    // Without it kwok listens on 0.0.0.0:<node-port>.
    `--server-address=127.0.0.1:${ports.kwok}`,
    `--tls-cert-file=${pki.servingCert}`,
    `--tls-private-key-file=${pki.servingKey}`,
    `--cidr=${POD_CIDR}`,
  ];
}

/** An admin kubeconfig (token auth, CA-verified); mode 0600 is the caller's job. */
export function kubeconfigYaml(o: { name: string; server: string; caFile: string; token: string; namespace?: string; user?: string }): string {
  const user = o.user ?? `${o.name}-admin`;
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    `- name: ${JSON.stringify(o.name)}`,
    "  cluster:",
    `    server: ${JSON.stringify(o.server)}`,
    `    certificate-authority: ${JSON.stringify(o.caFile)}`,
    "users:",
    `- name: ${JSON.stringify(user)}`,
    "  user:",
    `    token: ${JSON.stringify(o.token)}`,
    "contexts:",
    `- name: ${JSON.stringify(o.name)}`,
    "  context:",
    `    cluster: ${JSON.stringify(o.name)}`,
    `    user: ${JSON.stringify(user)}`,
    `    namespace: ${JSON.stringify(o.namespace ?? "default")}`,
    `current-context: ${JSON.stringify(o.name)}`,
    "",
  ].join("\n");
}
