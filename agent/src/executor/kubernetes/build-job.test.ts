import { describe, expect, it } from "vitest";
import { BUILDER_CERT_DIRS, type BuildJobInput, buildJob } from "./build-job";
import { WORK_CA_DIR, WORK_CA_FILE } from "./work-network";

const input = (extra: Partial<BuildJobInput> = {}): BuildJobInput => ({
  name: "b-0123456789ab",
  namespace: "work",
  labels: { "parallels.io/image": "x" },
  builder: "buildkit",
  builderImage: "moby/buildkit:v0.34.2-rootless",
  agentImage: "ghcr.io/example/parallels-agent:0.1.0",
  destination: "registry.corp.example:5000/ml/env:abc",
  context: { trackingUri: "http://mlflow:5000", runId: "r1", path: "parallels/build/x.tar.gz", dir: "/workspace" },
  plainHttpRegistries: [],
  withCa: true,
  imagePullSecrets: [],
  nodeSelector: {},
  tolerations: [],
  timeoutSeconds: 3600,
  ttlSecondsAfterFinished: 3600,
  network: { proxy: { secret: "site-proxy", noProxy: "localhost,.svc" }, ca: { kind: "configMap", name: "corp-ca", key: "ca.crt" } },
  ...extra,
});

describe("the image build Job behind a proxy", () => {
  for (const builder of ["buildkit", "kaniko"] as const) {
    it(`${builder}: both containers get the proxy from the Secret and the CA bundle mounted; the builder (Go) trusts it besides its image's CAs through SSL_CERT_DIR, the context program through NODE_EXTRA_CA_CERTS`, () => {
      const pod = buildJob(input({ builder })).spec!.template.spec!;
      expect(pod.volumes).toContainEqual({ name: "parallels-ca", configMap: { name: "corp-ca", items: [{ key: "ca.crt", path: "ca.crt" }] } });
      const [context, build] = [pod.initContainers![0]!, pod.containers[0]!];
      for (const c of [context, build]) {
        const env = new Map(c.env!.map((e) => [e.name, e]));
        for (const name of ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"])
          expect(env.get(name)).toEqual({ name, valueFrom: { secretKeyRef: { name: "site-proxy", key: name.toUpperCase(), optional: true } } });
        expect(env.get("NO_PROXY")).toEqual({ name: "NO_PROXY", value: "localhost,.svc" });
        expect(c.volumeMounts).toContainEqual({ name: "parallels-ca", mountPath: WORK_CA_DIR, readOnly: true });
        // A proxy URL never reaches a command line.
        expect(JSON.stringify([c.args, c.command])).not.toMatch(/proxy/i);
      }
      expect(context.env).toContainEqual({ name: "NODE_EXTRA_CA_CERTS", value: WORK_CA_FILE });
      expect(build.env).toContainEqual({ name: "SSL_CERT_DIR", value: `${BUILDER_CERT_DIRS[builder]}:${WORK_CA_DIR}` });
    });
  }

  it("without a network setting the pod has no proxy variables and no CA volume", () => {
    const pod = buildJob(input({ network: {} })).spec!.template.spec!;
    expect(JSON.stringify(pod)).not.toMatch(/PROXY|SSL_CERT_DIR|parallels-ca"/);
  });
});
