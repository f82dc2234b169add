/** Bindings of the control-plane Worker (wrangler.toml, secrets in .dev.vars / `wrangler secret`). */
export interface Env {
  DB: D1Database;
  /** Worker secret: the first admin token. Never stored; compared by hash. */
  PARALLELS_ADMIN_TOKEN?: string;
  /** Comma-separated browser origins allowed by CORS. */
  CORS_ORIGINS?: string;
  /** URL agents use to reach this control plane. */
  PUBLIC_URL?: string;
  /** Lifetime of a cluster's bootstrap token, in seconds (default 3600). */
  BOOTSTRAP_TTL_SECONDS?: string;
}

/** What handlers find on the Hono context after authentication. */
export interface Principal {
  workspaceId: string;
  scope: "admin" | "write" | "read";
  /** True only for the PARALLELS_ADMIN_TOKEN secret: it may also create workspaces. */
  root: boolean;
  tokenId: string | null;
}

export type AppEnv = { Bindings: Env; Variables: { principal: Principal; db: import("./db").Db } };
