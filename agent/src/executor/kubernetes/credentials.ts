/**
 * The agent's credentials in a Kubernetes Secret (the chart creates it, empty, and lets the agent
 * get and patch only that one): a restarted pod — with no volume of its own — finds them there,
 * so the single-use bootstrap token is needed once.
 */
import { z } from "zod";
import { StoredCredentialsSchema, type CredentialStore, type StoredCredentials } from "../../register";
import { isNotFound, type KubeApi } from "./api";

/** The key of the Secret's data that holds the credentials (JSON). */
export const CREDENTIALS_KEY = "credentials.json";

const SecretData = z.object({ data: z.record(z.string(), z.string()).nullish() });

export class SecretCredentialStore implements CredentialStore {
  readonly location: string;
  private readonly path: string;

  constructor(
    private readonly api: KubeApi,
    namespace: string,
    readonly name: string,
  ) {
    this.location = `Secret ${namespace}/${name} (key ${CREDENTIALS_KEY})`;
    this.path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${encodeURIComponent(name)}`;
  }

  async load(): Promise<StoredCredentials | null> {
    let secret: unknown;
    try {
      secret = await this.api.request("GET", this.path);
    } catch (err) {
      if (isNotFound(err)) throw new Error(`${this.location} does not exist: the chart creates it (or create it empty) so the agent can keep its credentials there`);
      throw err;
    }
    const encoded = SecretData.parse(secret).data?.[CREDENTIALS_KEY];
    if (!encoded) return null;
    const parsed = StoredCredentialsSchema.safeParse(JSON.parse(Buffer.from(encoded, "base64").toString("utf8")));
    if (!parsed.success) throw new Error(`stored credentials in ${this.location} are not valid (${parsed.error.issues[0]?.message}); empty the Secret and register again with a new bootstrap token`);
    return parsed.data;
  }

  async save(credentials: StoredCredentials): Promise<void> {
    const data = { [CREDENTIALS_KEY]: Buffer.from(JSON.stringify(credentials)).toString("base64") };
    await this.api.request("PATCH", this.path, { body: { data }, contentType: "application/merge-patch+json" });
  }
}
