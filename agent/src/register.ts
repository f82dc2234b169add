/**
 * Registration (ARCHITECTURE §3): the agent makes its own NATS nkey pair (the seed never leaves
 * it), trades the single-use bootstrap token for a NATS user JWT and a long-lived agent
 * credential, and keeps them in a {@link CredentialStore} so a restart needs no token.
 */
import { chmod, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { createUser } from "@nats-io/nkeys";
import { z } from "zod";
import { Backoff, realSleep, type Sleep } from "./backoff";
import { ControlPlaneError, type ControlPlaneClient } from "./control";
import { errInfo, type Logger } from "./log";

export const StoredCredentialsSchema = z.object({
  version: z.literal(1),
  controlPlaneUrl: z.string(),
  clusterId: z.string().regex(/^[A-Za-z0-9_-]+$/),
  clusterName: z.string(),
  /** Bearer credential for /v1/agent/heartbeat and /v1/agent/events. */
  credential: z.string().min(1),
  nats: z.object({
    servers: z.array(z.string()),
    jwt: z.string().min(1),
    /** `SU…` seed of the agent's own nkey; made here, never sent anywhere. */
    seed: z.string().startsWith("SU"),
    publicKey: z.string().startsWith("U"),
    inboxPrefix: z.string().min(1),
    stream: z.string().min(1),
    consumer: z.string().min(1),
  }),
  heartbeatSeconds: z.number().int().positive(),
  registeredAt: z.string(),
});
export type StoredCredentials = z.infer<typeof StoredCredentialsSchema>;

/** Where credentials live: a 0600 file in local mode; a Kubernetes Secret later. */
export interface CredentialStore {
  /** The stored credentials, or null when there are none. Throws when they exist but are unreadable. */
  load(): Promise<StoredCredentials | null>;
  save(credentials: StoredCredentials): Promise<void>;
  /** Where they are, for messages. */
  readonly location: string;
}

export class FileCredentialStore implements CredentialStore {
  constructor(readonly location: string) {}

  async load(): Promise<StoredCredentials | null> {
    let text: string;
    try {
      text = await readFile(this.location, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw err;
    }
    const parsed = StoredCredentialsSchema.safeParse(JSON.parse(text));
    if (!parsed.success) throw new Error(`stored credentials in ${this.location} are not valid (${parsed.error.issues[0]?.message}); remove the file and register again with a new bootstrap token`);
    return parsed.data;
  }

  async save(credentials: StoredCredentials): Promise<void> {
    await mkdir(dirname(this.location), { recursive: true, mode: 0o700 });
    const tmp = `${this.location}.${process.pid}.tmp`;
    await writeFile(tmp, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 });
    await chmod(tmp, 0o600);
    await rename(tmp, this.location);
  }
}

export interface EnsureCredentialsOptions {
  store: CredentialStore;
  client: ControlPlaneClient;
  controlPlaneUrl: string;
  bootstrapToken?: string | undefined;
  agentVersion: string;
  logger: Logger;
  signal?: AbortSignal;
  sleep?: Sleep;
  backoff?: Backoff;
}

/**
 * Loads stored credentials, or registers with the bootstrap token and stores what came back.
 * Retries while the control plane (or its NATS) is unavailable; a refused token is final.
 */
export async function ensureCredentials(o: EnsureCredentialsOptions): Promise<StoredCredentials> {
  const stored = await o.store.load();
  if (stored) {
    if (stored.controlPlaneUrl !== o.controlPlaneUrl) {
      o.logger.warn({ stored: stored.controlPlaneUrl, configured: o.controlPlaneUrl }, "stored credentials were issued by another control-plane URL; using them anyway");
    }
    o.logger.info({ clusterId: stored.clusterId, clusterName: stored.clusterName, location: o.store.location, bootstrapTokenIgnored: Boolean(o.bootstrapToken) }, "using stored credentials");
    return stored;
  }
  if (!o.bootstrapToken) throw new Error(`no stored credentials in ${o.store.location} and no bootstrap token`);
  const keys = createUser();
  const publicKey = keys.getPublicKey();
  const seed = new TextDecoder().decode(keys.getSeed());
  keys.clear();
  const sleep = o.sleep ?? realSleep;
  const backoff = o.backoff ?? new Backoff({ initialMs: 500, maxMs: 30_000 });
  for (;;) {
    try {
      const answer = await o.client.register({ bootstrapToken: o.bootstrapToken, natsPublicKey: publicKey, agentVersion: o.agentVersion });
      const credentials: StoredCredentials = {
        version: 1,
        controlPlaneUrl: o.controlPlaneUrl,
        clusterId: answer.clusterId,
        clusterName: answer.clusterName,
        credential: answer.credential,
        nats: { servers: answer.nats.servers, jwt: answer.nats.jwt, seed, publicKey, inboxPrefix: answer.nats.inboxPrefix, stream: answer.nats.stream, consumer: answer.nats.consumer },
        heartbeatSeconds: answer.heartbeatSeconds,
        registeredAt: new Date().toISOString(),
      };
      await o.store.save(credentials);
      o.logger.info({ clusterId: answer.clusterId, clusterName: answer.clusterName, location: o.store.location }, "registered; credentials stored");
      return credentials;
    } catch (err) {
      if (!(err instanceof ControlPlaneError) || !err.retryable) {
        throw new Error(`registration refused: ${(err as Error).message}`, { cause: err });
      }
      const delay = backoff.next();
      o.logger.warn({ err: errInfo(err), retryInMs: delay }, "registration failed; retrying");
      await sleep(delay, o.signal);
      if (o.signal?.aborted) throw new Error("stopped before registration finished");
    }
  }
}
