import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { POD_DIR_ENV, STEP_COMMAND_ENV, STEP_WRAPPER } from "./pod-layout";
import { parseWorkCaBundle, STEP_EXTRA_CA_ENV, workNoProxy } from "./work-network";

describe("the work pods' network settings", () => {
  it("reads --work-ca-bundle as configmap/<name>[/<key>] or secret/<name>[/<key>]", () => {
    expect(parseWorkCaBundle("configmap/corp-ca")).toEqual({ kind: "configMap", name: "corp-ca", key: "ca.crt" });
    expect(parseWorkCaBundle("secret/corp-ca/bundle.pem")).toEqual({ kind: "secret", name: "corp-ca", key: "bundle.pem" });
    for (const bad of ["corp-ca", "pvc/corp-ca", "configmap/", "configmap/Corp_CA"]) expect(parseWorkCaBundle(bad), bad).toBeNull();
  });

  it("NO_PROXY keeps the agent's entries and adds the cluster's own names once", () => {
    expect(workNoProxy("")).toBe("localhost,127.0.0.1,.svc,.cluster.local,$(KUBERNETES_SERVICE_HOST)");
    expect(workNoProxy(" .corp.example , .svc ,10.96.0.1")).toBe(".corp.example,.svc,10.96.0.1,localhost,127.0.0.1,.cluster.local,$(KUBERNETES_SERVICE_HOST)");
  });

  it("the step's wrapper writes the image's CAs followed by ours before the step starts, and nothing without a bundle", () => {
    const root = mkdtempSync(join(tmpdir(), "parallels-wrapper-ca-"));
    try {
      for (const d of ["run", "logs", "project"]) mkdirSync(join(root, d));
      writeFileSync(join(root, "run/env"), `PARALLELS_PROJECT_DIR='${join(root, "project")}'\n`);
      const ours = "-----BEGIN CERTIFICATE-----\nOURS\n-----END CERTIFICATE-----\n";
      writeFileSync(join(root, "ours.pem"), ours);
      const run = (env: Record<string, string>) =>
        spawnSync("/bin/sh", ["-c", STEP_WRAPPER], { env: { PATH: process.env.PATH!, [POD_DIR_ENV]: root, [STEP_COMMAND_ENV]: 'cat "$SSL_CERT_FILE" >/dev/null 2>&1; echo ok', ...env } });
      expect(run({}).status).toBe(0);
      expect(existsSync(join(root, "run/ca-bundle.pem"))).toBe(false);
      expect(run({ [STEP_EXTRA_CA_ENV]: join(root, "ours.pem") }).status).toBe(0);
      const bundle = readFileSync(join(root, "run/ca-bundle.pem"), "utf8");
      expect(bundle.endsWith(ours)).toBe(true);
      // This machine's own CAs come first (Debian's bundle, as in python:*-slim images).
      const system = "/etc/ssl/certs/ca-certificates.crt";
      if (existsSync(system)) expect(bundle.startsWith(readFileSync(system, "utf8"))).toBe(true);
      expect(readFileSync(join(root, "logs/stdout.log"), "utf8")).toBe("ok\n");
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
