/**
 * @module
 * The registry check: does the cluster's registry hold an image (OCI distribution API,
 * `HEAD /v2/<name>/manifests/<tag>` asking for OCI and Docker manifests and indexes)? Answers the
 * image's digest, or null when it is missing. Authenticates as registries ask (`WWW-Authenticate`:
 * Basic, or a Bearer token from the realm they name), with the credentials of a Docker config
 * (`config.json` / a `kubernetes.io/dockerconfigjson` Secret's `.dockerconfigjson`).
 */
import { readFileSync } from "node:fs";
import { splitImageRef } from "../../../proto/images";

/** What a manifest HEAD accepts: an image or an index, OCI or Docker. */
export const MANIFEST_ACCEPT = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.docker.distribution.manifest.v2+json",
].join(", ");

/** `{"auths": {"host": {"auth": base64(user:password)} | {"username", "password"}}}`. */
export interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
}

export function readDockerConfig(path: string): DockerConfig {
  return JSON.parse(readFileSync(path, "utf8")) as DockerConfig;
}

/** The user and password a Docker config holds for `registry` (keys may carry a scheme or `/v1/`). */
export function credentialsFor(config: DockerConfig | undefined, registry: string): { username: string; password: string } | null {
  for (const [key, entry] of Object.entries(config?.auths ?? {})) {
    const host = key.replace(/^https?:\/\//, "").replace(/\/.*$/, "");
    if (host !== registry && !(registry === "docker.io" && host === "index.docker.io")) continue;
    if (entry.username !== undefined && entry.password !== undefined) return { username: entry.username, password: entry.password };
    if (entry.auth) {
      const text = Buffer.from(entry.auth, "base64").toString("utf8");
      const i = text.indexOf(":");
      if (i > 0) return { username: text.slice(0, i), password: text.slice(i + 1) };
    }
  }
  return null;
}

export interface RegistryOptions {
  /** Registries reached over plain HTTP (`host:port`; a test's registry on 127.0.0.1). */
  plainHttp?: readonly string[];
  auth?: DockerConfig;
  timeoutMs?: number;
}

export class RegistryError extends Error {
  override name = "RegistryError";
}

/** A manifest's digest, or null when the registry does not have it; one instance per agent (tokens are kept per scope). */
export class RegistryClient {
  private readonly tokens = new Map<string, string>();
  /** HEAD requests made (the bench and the tests count them). */
  checks = 0;

  constructor(private readonly o: RegistryOptions = {}) {}

  private base(registry: string): string {
    const host = registry === "docker.io" ? "registry-1.docker.io" : registry;
    return `${this.o.plainHttp?.includes(registry) ? "http" : "https"}://${host}`;
  }

  async manifestDigest(ref: string): Promise<string | null> {
    const { registry, repository, tag, digest } = splitImageRef(ref);
    const reference = digest ?? tag ?? "latest";
    const url = `${this.base(registry)}/v2/${repository}/manifests/${reference}`;
    this.checks++;
    let res = await this.head(url, this.tokens.get(`${registry}/${repository}`));
    if (res.status === 401) {
      const authorization = await this.authorize(registry, repository, res.headers.get("www-authenticate"));
      if (authorization) {
        this.tokens.set(`${registry}/${repository}`, authorization);
        res = await this.head(url, authorization);
      }
    }
    if (res.status === 404) return null;
    if (res.status === 200) {
      const d = res.headers.get("docker-content-digest");
      if (!d) throw new RegistryError(`HEAD ${url}: 200 without a Docker-Content-Digest header`);
      return d;
    }
    throw new RegistryError(`HEAD ${url}: ${res.status}${res.status === 401 ? " (no credentials for this registry, or refused)" : ""}`);
  }

  private async head(url: string, authorization: string | undefined): Promise<Response> {
    return fetch(url, {
      method: "HEAD",
      headers: { accept: MANIFEST_ACCEPT, ...(authorization ? { authorization } : {}) },
      signal: AbortSignal.timeout(this.o.timeoutMs ?? 15_000),
    });
  }

  /** The Authorization header for a challenge: Basic with the stored credentials, or a Bearer token from the realm. */
  private async authorize(registry: string, repository: string, challenge: string | null): Promise<string | null> {
    const creds = credentialsFor(this.o.auth, registry);
    const basic = creds ? `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString("base64")}` : undefined;
    if (!challenge) return basic ?? null;
    const scheme = challenge.split(/\s/, 1)[0]!.toLowerCase();
    if (scheme === "basic") return basic ?? null;
    if (scheme !== "bearer") return null;
    const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!.toLowerCase(), m[2]!]));
    if (!params.realm) return null;
    const url = new URL(params.realm);
    if (params.service) url.searchParams.set("service", params.service);
    url.searchParams.set("scope", params.scope ?? `repository:${repository}:pull`);
    const res = await fetch(url, { headers: basic ? { authorization: basic } : {}, signal: AbortSignal.timeout(this.o.timeoutMs ?? 15_000) });
    if (!res.ok) throw new RegistryError(`token from ${url.origin}${url.pathname}: ${res.status}`);
    const body = (await res.json()) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    return token ? `Bearer ${token}` : null;
  }
}

/** The cluster's registry as the {@link import("./service").ImageStore} of built images. */
export class RegistryImageStore {
  readonly description: string;
  constructor(
    readonly client: RegistryClient,
    registry: string,
  ) {
    this.description = `the registry ${registry}`;
  }
  digest(ref: string): Promise<string | null> {
    return this.client.manifestDigest(ref);
  }
}
