/**
 * The harness cluster's PKI and admin credential, made fresh for every start (a few tens of ms):
 * a CA, one serving certificate for 127.0.0.1 (kube-apiserver, kube-scheduler and kwok serve it;
 * it also carries `clientAuth`, so the apiserver presents it to kwok's kubelet API), the
 * ServiceAccount signing key pair, and a static token file with the admin's token.
 *
 * Certificates need openssl (node:crypto cannot issue X.509); the keys are EC P-256, which every
 * component accepts and which is much faster to generate than RSA on a busy machine.
 */
import { execFile } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface Pki {
  dir: string;
  caCert: string;
  caKey: string;
  /** Serving (and kubelet-client) certificate and key: SANs 127.0.0.1, localhost, the `kubernetes` service names. */
  servingCert: string;
  servingKey: string;
  /** ServiceAccount token signing key (private, for apiserver and controller-manager) and its public half. */
  saKey: string;
  saPub: string;
  /** `--token-auth-file`: the admin token, user `parallels-admin` in group `system:masters`. */
  tokenFile: string;
  adminToken: string;
}

/** SANs of the serving certificate: loopback, and the in-cluster names of the apiserver's service (10.0.0.1). */
const SERVING_SANS = ["IP:127.0.0.1", "DNS:localhost", "IP:10.0.0.1", "DNS:kubernetes", "DNS:kubernetes.default", "DNS:kubernetes.default.svc"];

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run("openssl", args, { cwd });
  } catch (e) {
    const err = e as Error & { stderr?: string };
    throw new Error(`openssl ${args[0]} failed: ${err.stderr?.trim() || err.message}`);
  }
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/** Writes a fresh PKI into `dir` (created 0700; keys and the token file 0600). */
export async function makePki(dir: string): Promise<Pki> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const pki: Pki = {
    dir,
    caCert: join(dir, "ca.crt"),
    caKey: join(dir, "ca.key"),
    servingCert: join(dir, "serving.crt"),
    servingKey: join(dir, "serving.key"),
    saKey: join(dir, "sa.key"),
    saPub: join(dir, "sa.pub"),
    tokenFile: join(dir, "tokens.csv"),
    adminToken: randomBytes(32).toString("hex"),
  };
  // The ServiceAccount key pair needs no certificate: node:crypto makes it without a process.
  const sa = generateKeyPairSync("ec", { namedCurve: "P-256" });
  await writeFile(pki.saKey, sa.privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
  await writeFile(pki.saPub, sa.publicKey.export({ type: "spki", format: "pem" }));

  // 10 years: a cluster's run dir may be reused for a long time; nothing here is a real secret.
  await openssl(
    [
      "req",
      "-x509",
      ...EC,
      "-days",
      "3650",
      "-subj",
      "/CN=parallels-harness-ca",
      "-keyout",
      "ca.key",
      "-out",
      "ca.crt",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ],
    dir,
  );
  await openssl(["req", "-new", ...EC, "-subj", "/CN=kube-apiserver", "-keyout", "serving.key", "-out", "serving.csr"], dir);
  await writeFile(
    join(dir, "serving.ext"),
    [`subjectAltName=${SERVING_SANS.join(",")}`, "basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature", "extendedKeyUsage=serverAuth,clientAuth", ""].join("\n"),
  );
  await openssl(["x509", "-req", "-in", "serving.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "3650", "-extfile", "serving.ext", "-out", "serving.crt"], dir);
  await chmod(pki.caKey, 0o600);
  await chmod(pki.servingKey, 0o600);
  // Static token file: token,user,uid,"group". The only place the admin token is given to a component.
  await writeFile(pki.tokenFile, `${pki.adminToken},parallels-admin,parallels-admin,"system:masters"\n`, { mode: 0o600 });
  return pki;
}
