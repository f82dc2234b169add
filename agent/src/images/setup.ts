/**
 * @module
 * The image settings and services from the agent's configuration: where images go (registry and
 * prefix), where base images come from, where images are looked for (the registry, or this
 * machine's storage) and, on this machine, buildah as the builder.
 */
import { DEFAULT_BASE_IMAGES, type BaseImages } from "../../../proto/images";
import type { AgentConfig } from "../config";
import { BuildahBuilder, LocalImageStore } from "./buildah";
import type { ImageSettings } from "./plan";
import { readDockerConfig, RegistryClient, RegistryImageStore } from "./registry";
import { ImageService } from "./service";

type ImageConfig = Pick<AgentConfig, "imageRegistry" | "imageRepositoryPrefix" | "imageRegistryPlainHttp" | "imageRegistryAuth" | "baseImages" | "extraCaBundle">;

export function imageSettingsFor(config: ImageConfig): ImageSettings {
  const bases: BaseImages = { ...DEFAULT_BASE_IMAGES };
  for (const [k, v] of Object.entries(config.baseImages)) if (v !== undefined) (bases as unknown as Record<string, unknown>)[k] = v;
  return { target: { registry: config.imageRegistry ?? "", prefix: config.imageRepositoryPrefix }, bases };
}

/** The registry client of the agent's checks (credentials from the Docker config the chart mounts). */
export function registryClientFor(config: ImageConfig): RegistryClient {
  return new RegistryClient({
    ...(config.imageRegistry && config.imageRegistryPlainHttp ? { plainHttp: [config.imageRegistry.split("/")[0]!] } : {}),
    ...(config.imageRegistryAuth ? { auth: readDockerConfig(config.imageRegistryAuth) } : {}),
  });
}

/** `--containers podman`: buildah builds (and pushes, with a registry), podman runs. */
export async function localContainersFor(config: ImageConfig, env: NodeJS.ProcessEnv = process.env) {
  const settings = imageSettingsFor(config);
  const host = config.imageRegistry?.split("/")[0];
  const plainHttp = host && config.imageRegistryPlainHttp ? [host] : [];
  const builder = new BuildahBuilder({ env, push: !!host, plainHttp, ...(config.extraCaBundle ? { caBundle: config.extraCaBundle } : {}) });
  await builder.describe();
  const store = host ? new RegistryImageStore(registryClientFor(config), host) : new LocalImageStore({ env });
  return { service: new ImageService(store, builder), settings, env, plainHttp };
}
