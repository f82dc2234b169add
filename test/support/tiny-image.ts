/**
 * Pushes a tiny OCI image (one empty layer; a label to tell images apart) to a registry with the
 * distribution API itself (blob uploads, then the manifest) — what a build pod would have pushed,
 * where KWOK stands in for the kubelet that would have run it. Returns the manifest's digest.
 */
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";

const sha = (b: Uint8Array | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

async function pushBlob(base: string, repository: string, data: Uint8Array): Promise<string> {
  const digest = sha(data);
  const start = await fetch(`${base}/v2/${repository}/blobs/uploads/`, { method: "POST" });
  if (start.status !== 202) throw new Error(`blob upload to ${repository}: ${start.status}`);
  const location = new URL(start.headers.get("location")!, base);
  location.searchParams.set("digest", digest);
  const put = await fetch(location, { method: "PUT", headers: { "content-type": "application/octet-stream" }, body: new Blob([data as Uint8Array<ArrayBuffer>]) });
  if (put.status !== 201) throw new Error(`blob put to ${repository}: ${put.status} ${await put.text()}`);
  return digest;
}

export async function pushTinyImage(registry: string, ref: string, label: string): Promise<string> {
  const base = `http://${registry}`;
  const named = ref.slice(registry.length + 1);
  const colon = named.lastIndexOf(":");
  const repository = named.slice(0, colon);
  const tag = named.slice(colon + 1);
  const tar = new Uint8Array(1024);
  const layer = gzipSync(tar);
  const config = new TextEncoder().encode(
    JSON.stringify({ architecture: "amd64", os: "linux", config: { User: "10001:10001", Labels: { "parallels.test": label } }, rootfs: { type: "layers", diff_ids: [sha(tar)] } }),
  );
  const layerDigest = await pushBlob(base, repository, layer);
  const configDigest = await pushBlob(base, repository, config);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: configDigest, size: config.length },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: layerDigest, size: layer.length }],
  });
  const put = await fetch(`${base}/v2/${repository}/manifests/${tag}`, { method: "PUT", headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" }, body: manifest });
  if (put.status !== 201) throw new Error(`manifest put ${ref}: ${put.status} ${await put.text()}`);
  return put.headers.get("docker-content-digest") ?? sha(manifest);
}
