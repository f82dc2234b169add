/**
 * What the image tests share: the suite's registry and base image (global-setup.ts), a container
 * state per test file, the base mapping that names the test base, and the image service as the
 * agent makes it.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inject } from "vitest";
import { type BaseImages, DEFAULT_BASE_IMAGES, type ImageTarget } from "../../proto/images";
import { BuildahBuilder } from "../../agent/src/images/buildah";
import { RegistryClient, RegistryImageStore } from "../../agent/src/images/registry";
import { ImageService } from "../../agent/src/images/service";
import { type ContainerState, containerState, removeContainerState } from "../../scripts/images/containers";

export const suite = () => inject("images");

/** The base images as an air-gapped site would map them: everything from the suite's registry, Python from the Debian-made base. */
export function testBases(): BaseImages {
  const s = suite();
  return { ...DEFAULT_BASE_IMAGES, registry: s.registry, pythonRepository: s.baseRepository, pythonTag: "{minor}-debian-bookworm" };
}

/** The host's CA bundle: this machine reaches PyPI through a TLS-inspecting proxy whose CA is only there (the product's "extra CA bundle"). */
export const HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";

export interface ImagesHarness {
  state: ContainerState;
  target: ImageTarget;
  registry: RegistryClient;
  service: ImageService;
  builder: BuildahBuilder;
  cleanup(): void;
}

/** A container state of its own and images under `prefix` in the suite's registry. */
export function imagesHarness(prefix: string): ImagesHarness {
  const s = suite();
  const dir = mkdtempSync(join(tmpdir(), "parallels-images-"));
  const state = containerState(dir, [s.registry]);
  const registry = new RegistryClient({ plainHttp: [s.registry] });
  const builder = new BuildahBuilder({ env: state.env, caBundle: HOST_CA_BUNDLE, push: true, plainHttp: [s.registry], tmpDir: join(dir, "tmp") });
  const service = new ImageService(new RegistryImageStore(registry, s.registry), builder);
  return {
    state,
    target: { registry: s.registry, prefix },
    registry,
    service,
    builder,
    cleanup: () => {
      removeContainerState(state);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
