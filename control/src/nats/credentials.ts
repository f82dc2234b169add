/**
 * Per-cluster NATS credentials minted by the control plane (recipe: docs/architecture.md §5).
 *
 * - {@link mintAgentUserJwt}: at registration, a user JWT for the agent's own `U…` key, signed by
 *   the APP account's signing key, allowed only to pull from and ack `agent-<clusterId>`.
 * - {@link mintAppAccountJwt}: the APP account JWT re-signed by the operator signing key with the
 *   **full** revocation list; pushed with {@link claimsUpdateRequest} it cuts a revoked agent off at
 *   once, and the server's full resolver keeps it across restarts.
 *
 * Web Crypto only (workerd and Node 22). Import keys once with {@link createNatsMinter}.
 */
import { agentPermissions, APP_ACCOUNT_NAME, type AccountNats, appAccountNats, type NatsPermission, type NatsPermissions } from "../../../proto/nats";
import { type NatsClaims, signJwt } from "./jwt";
import { decodePublicKey, importSeed, isPublicKey, type NkeySigner } from "./nkeys";

/** Default lifetime of an agent's user JWT: a backstop only — revocation is the real cut-off. */
export const AGENT_JWT_TTL_SECONDS = 365 * 24 * 3600;

/** The `nats` part of a user JWT. */
export interface UserNats extends NatsPermissions {
  subs: number;
  data: number;
  payload: number;
  issuer_account: string;
}

function assertAllowLists(perms: { pub: NatsPermission; sub: NatsPermission }): void {
  // An empty allow list means "allow everything": never mint one.
  if (!perms.pub.allow?.length || !perms.sub.allow?.length) throw new Error("refusing to mint an empty allow list");
}

/** Options of {@link mintAgentUserJwt}. */
export interface AgentJwtRequest {
  /** The cluster the agent serves; must match `^[A-Za-z0-9_-]+$`. */
  clusterId: string;
  /** The agent's own public user nkey (`U…`); its seed never leaves the agent. */
  userPublicKey: string;
  /** Lifetime in seconds (default {@link AGENT_JWT_TTL_SECONDS}); `0` for no expiry. */
  ttlSeconds?: number;
  /** Clock in ms, for tests. */
  now?: number;
}

/**
 * Mints the user JWT of a cluster's agent: `sub` = its `U…` key, `iss` = the account signing key,
 * `issuer_account` = the APP account, name `cluster-<id>`, permissions {@link agentPermissions}.
 * @param accountSigner the APP account's signing key (`SA…` seed imported with {@link importSeed}).
 * @param appAccount the APP account's public key (`A…`).
 */
export async function mintAgentUserJwt(accountSigner: NkeySigner, appAccount: string, req: AgentJwtRequest): Promise<string> {
  if (accountSigner.role !== "account") throw new Error("agent JWTs are signed by an account signing key");
  decodePublicKey(appAccount, "account");
  decodePublicKey(req.userPublicKey, "user");
  const perms = agentPermissions(req.clusterId);
  assertAllowLists(perms);
  const now = req.now ?? Date.now();
  const ttl = req.ttlSeconds ?? AGENT_JWT_TTL_SECONDS;
  if (!Number.isInteger(ttl) || ttl < 0) throw new Error("ttlSeconds must be a non-negative integer");
  const claims: Omit<NatsClaims<UserNats>, "jti" | "iat" | "iss"> = {
    name: `cluster-${req.clusterId}`,
    sub: req.userPublicKey,
    aud: "NATS",
    ...(ttl > 0 ? { exp: Math.floor(now / 1000) + ttl } : {}),
    nats: { ...perms, subs: -1, data: -1, payload: -1, issuer_account: appAccount, type: "user", version: 2 },
  };
  return signJwt(claims, accountSigner, now);
}

/**
 * The revocation list from stored rows (`nats_revocations`: public key, revoked-at in ms). The
 * server rejects every JWT of that key issued at or before the given second, so the time is
 * rounded up.
 */
export function revocationList(rows: Iterable<{ publicKey: string; revokedAt: number }>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of rows) out[r.publicKey] = Math.max(out[r.publicKey] ?? 0, Math.ceil(r.revokedAt / 1000));
  return out;
}

/** Options of {@link mintAppAccountJwt}. */
export interface AccountJwtRequest {
  /** The APP account's public key (`A…`): the JWT's `sub`. */
  appAccount: string;
  /** The account's signing keys (`A…` public keys) — the one the control plane signs agents with. */
  accountSigningKeys: string[];
  /** The **full** list (public user key → unix seconds); every push replaces the previous one. */
  revocations: Record<string, number>;
  /**
   * `iat` (unix seconds) of the account JWT the server holds (the last one pushed, or setup's).
   * The new JWT gets `iat` ≥ `after + 1`: the server ignores a push that is older than what it
   * holds, and an equal `iat` lets the preloaded JWT win again at the next restart.
   */
  after?: number;
  /** Clock in ms, for tests. */
  now?: number;
}

/**
 * Mints the APP account JWT, signed by the operator signing key, carrying the full revocation
 * list. The server keeps the newest `iat`: one writer only, and always the full list.
 * @param operatorSigner the operator signing key (`SO…` seed imported with {@link importSeed}).
 */
export async function mintAppAccountJwt(operatorSigner: NkeySigner, req: AccountJwtRequest): Promise<string> {
  if (operatorSigner.role !== "operator") throw new Error("account JWTs are signed by an operator signing key");
  decodePublicKey(req.appAccount, "account");
  for (const k of req.accountSigningKeys) decodePublicKey(k, "account");
  for (const k of Object.keys(req.revocations)) {
    if (!isPublicKey(k, "user")) throw new Error(`revocation of ${JSON.stringify(k)}: not a user public key`);
  }
  const claims: Omit<NatsClaims<AccountNats>, "jti" | "iat" | "iss"> = {
    name: APP_ACCOUNT_NAME,
    sub: req.appAccount,
    aud: "NATS",
    nats: { ...appAccountNats(req.accountSigningKeys, req.revocations), type: "account", version: 2 },
  };
  const now = req.now ?? Date.now();
  const iatMs = req.after !== undefined ? Math.max(now, (req.after + 1) * 1000) : now;
  return signJwt(claims, operatorSigner, iatMs);
}

/** Subject on which the SYS user pushes an account JWT to a full resolver. */
export const CLAIMS_UPDATE_SUBJECT = "$SYS.REQ.CLAIMS.UPDATE";

/** The request that pushes `accountJwt`: send it with `nc.request(subject, payload)` as the SYS user. */
export function claimsUpdateRequest(accountJwt: string): { subject: string; payload: Uint8Array } {
  if (accountJwt.split(".").length !== 3) throw new Error("not a JWT");
  return { subject: CLAIMS_UPDATE_SUBJECT, payload: new TextEncoder().encode(accountJwt) };
}

/**
 * Subject on which the SYS user reads the account JWT a server holds (the reply is the JWT).
 * nats-server (2.9 and 2.15 alike) stores whatever operator-signed account JWT is pushed, even an
 * older one, which silently drops later revocations: compare what it holds with the newest list
 * and re-push when they differ.
 */
export function claimsLookupSubject(account: string): string {
  decodePublicKey(account, "account");
  return `$SYS.REQ.ACCOUNT.${account}.CLAIMS.LOOKUP`;
}

/** The server's answer to a claims update: `ok` when it stored the JWT (code 200). */
export interface ClaimsUpdateResult {
  ok: boolean;
  code: number;
  message: string;
  account?: string;
}

/** Parses the reply to {@link claimsUpdateRequest} (`{data:{code,message,account}}` or `{error:{…}}`). */
export function parseClaimsUpdateResponse(body: Uint8Array | string): ClaimsUpdateResult {
  const text = typeof body === "string" ? body : new TextDecoder().decode(body);
  let json: { data?: { code?: number; message?: string; account?: string }; error?: { code?: number; description?: string; account?: string } };
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, code: 0, message: `unparseable reply: ${text.slice(0, 200)}` };
  }
  if (json.error) return { ok: false, code: json.error.code ?? 500, message: json.error.description ?? "error", ...(json.error.account ? { account: json.error.account } : {}) };
  const code = json.data?.code ?? 0;
  return { ok: code === 200, code, message: json.data?.message ?? "", ...(json.data?.account ? { account: json.data.account } : {}) };
}

/** The Worker secrets the minter needs (see scripts/nats/setup.ts for who needs which). */
export interface NatsMinterSecrets {
  /** `NATS_ACCOUNT_SIGNING_SEED` (`SA…`): signs agent user JWTs. */
  accountSigningSeed: string;
  /** `NATS_APP_ACCOUNT` (`A…`): the APP account's public key. */
  appAccount: string;
  /** `NATS_OPERATOR_SIGNING_SEED` (`SO…`): re-signs the APP account JWT for revocations. */
  operatorSigningSeed?: string;
}

/** Keys imported once; mints in ~0.03 ms each. */
export interface NatsMinter {
  /** Public key of the account signing key (the `iss` of agent JWTs). */
  readonly accountSigningKey: string;
  mintAgentJwt(req: AgentJwtRequest): Promise<string>;
  /** Requires `operatorSigningSeed`. `revocations` is the full list. */
  mintAccountJwt(req: { revocations: Record<string, number>; after?: number; now?: number }): Promise<string>;
}

/**
 * Imports the signing seeds once (keep the promise in module scope of the Worker / Durable Object)
 * and returns minting functions bound to them.
 */
export async function createNatsMinter(secrets: NatsMinterSecrets): Promise<NatsMinter> {
  decodePublicKey(secrets.appAccount, "account");
  const accountSigner = await importSeed(secrets.accountSigningSeed, "account");
  const operatorSigner = secrets.operatorSigningSeed ? await importSeed(secrets.operatorSigningSeed, "operator") : undefined;
  return {
    accountSigningKey: accountSigner.publicKey,
    mintAgentJwt: (req) => mintAgentUserJwt(accountSigner, secrets.appAccount, req),
    mintAccountJwt: (req) => {
      if (!operatorSigner) return Promise.reject(new Error("NATS_OPERATOR_SIGNING_SEED is not configured"));
      return mintAppAccountJwt(operatorSigner, {
        appAccount: secrets.appAccount,
        accountSigningKeys: [accountSigner.publicKey],
        revocations: req.revocations,
        ...(req.after !== undefined ? { after: req.after } : {}),
        ...(req.now !== undefined ? { now: req.now } : {}),
      });
    },
  };
}
