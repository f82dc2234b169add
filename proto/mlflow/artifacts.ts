/**
 * @module
 * Mapping a run's artifact URI to the tracking server's artifact proxy
 * (`<server>/api/2.0/mlflow-artifacts/artifacts/<path>`, served by `mlflow server --serve-artifacts`).
 *
 * A run created on such a server has an artifact URI like `mlflow-artifacts:/3/<runId>/artifacts`
 * (or `mlflow-artifacts://host:port/…`, or the proxy's own `http(s)://…/mlflow-artifacts/artifacts/…`
 * URL); the proxy path is the part after the scheme. Other roots (`s3://`, `file://`) are not
 * reachable through the proxy: the caller gets a clear error instead.
 */
import { MlflowClientError } from "./errors";

export const ARTIFACT_PROXY_PREFIX = "/api/2.0/mlflow-artifacts/artifacts";

/** Where a run's artifacts live on an artifact proxy. */
export interface ArtifactLocation {
  /** Origin (and base path) of the server that proxies them, without a trailing slash. */
  serverUrl: string;
  /** Path of the artifact root below the proxy prefix, without leading or trailing slash. */
  rootPath: string;
}

/**
 * Resolve an artifact URI against the tracking URI. Throws `ARTIFACTS_NOT_PROXIED` for roots the
 * tracking server does not proxy.
 */
export function artifactLocation(artifactUri: string, trackingUri: string): ArtifactLocation {
  const tracking = trackingUri.replace(/\/+$/, "");
  const m = /^mlflow-artifacts:(\/\/([^/]*))?(\/.*)?$/.exec(artifactUri);
  if (m) {
    const host = m[2];
    const serverUrl = host ? `${new URL(tracking).protocol}//${host}` : tracking;
    return { serverUrl, rootPath: trimSlashes(m[3] ?? "") };
  }
  if (/^https?:\/\//i.test(artifactUri)) {
    const i = artifactUri.indexOf(ARTIFACT_PROXY_PREFIX);
    if (i >= 0) {
      return {
        serverUrl: artifactUri.slice(0, i),
        rootPath: trimSlashes(artifactUri.slice(i + ARTIFACT_PROXY_PREFIX.length)),
      };
    }
  }
  throw new MlflowClientError(
    "ARTIFACTS_NOT_PROXIED",
    `artifact root '${artifactUri}' is not served by the tracking server's artifact proxy; start the server with --serve-artifacts (and no --default-artifact-root pointing elsewhere)`,
  );
}

function trimSlashes(s: string): string {
  return s.replace(/^\/+|\/+$/g, "");
}

/**
 * Check and normalise a path relative to a run's artifact root: `/`-separated, no `..`, no
 * absolute path, no empty or `.` segments. `""` is the root itself when `allowRoot`.
 */
export function normalizeArtifactPath(path: string, allowRoot = false): string {
  const segments = path.split("/").filter((s) => s !== "" && s !== ".");
  if (path.startsWith("/") || segments.includes("..") || path.includes("\\") || path.includes("\0")) {
    throw new MlflowClientError("INVALID_ARGUMENT", `artifact path must be relative, without '..': '${path}'`);
  }
  if (segments.length === 0 && !allowRoot) {
    throw new MlflowClientError("INVALID_ARGUMENT", "artifact path must name a file");
  }
  return segments.join("/");
}

/** URL-encode each segment of a `/`-separated path. */
export function encodePath(path: string): string {
  return path
    .split("/")
    .filter((s) => s !== "")
    .map(encodeURIComponent)
    .join("/");
}

/** Join root and relative path with one `/`, skipping empty parts. */
export function joinPath(...parts: string[]): string {
  return parts.filter((p) => p !== "").join("/");
}
