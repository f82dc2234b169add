/**
 * The product's NATS account `APP` (recipe: shared/design/nats-auth.md): JetStream on, no limits,
 * and the revocation list. scripts/nats/setup.ts signs it once; the control plane re-signs it
 * with every revocation. Both build its claims here, so a re-signed account never drops a setting.
 */
import type { NatsPermission } from "./permissions";

/** Name of the product's account. */
export const APP_ACCOUNT_NAME = "APP";

/** The `nats` part of an account JWT. */
export interface AccountNats {
  limits: Record<string, number | boolean>;
  signing_keys: string[];
  revocations?: Record<string, number>;
  default_permissions: { pub: NatsPermission; sub: NatsPermission };
}

/**
 * The `nats` part of the APP account JWT: JetStream on (every JetStream limit −1), no other limits,
 * the account signing keys (`A…`), and the revocation list (user key → unix seconds; omitted when
 * empty, sorted so the same list signs the same claims). The keys' encoding is checked by whoever
 * signs (control/src/nats: nkeys checksums).
 */
export function appAccountNats(accountSigningKeys: string[], revocations: Record<string, number> = {}): AccountNats {
  if (accountSigningKeys.length === 0) throw new Error("the APP account needs a signing key");
  for (const [k, t] of Object.entries(revocations)) {
    if (!Number.isInteger(t) || t <= 0) throw new Error(`revocation of ${k}: time must be unix seconds`);
  }
  const sorted = Object.fromEntries(Object.entries(revocations).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return {
    limits: {
      subs: -1,
      data: -1,
      payload: -1,
      imports: -1,
      exports: -1,
      wildcards: true,
      conn: -1,
      leaf: -1,
      mem_storage: -1,
      disk_storage: -1,
      streams: -1,
      consumer: -1,
    },
    signing_keys: [...accountSigningKeys],
    ...(Object.keys(sorted).length ? { revocations: sorted } : {}),
    default_permissions: { pub: {}, sub: {} },
  };
}
