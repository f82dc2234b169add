/** Bindings of the control-plane Worker (wrangler.toml, secrets in .dev.vars / `wrangler secret`). */
export interface Env {
  DB: D1Database;
  /** Worker secret: the first admin token. Never stored; compared by hash. */
  PARALLELS_ADMIN_TOKEN?: string;
  /** Comma-separated browser origins allowed by CORS. */
  CORS_ORIGINS?: string;
  /** URL agents use to reach this control plane. */
  PUBLIC_URL?: string;
  /** MLflow's tracking server as the control plane reaches it: steps' logs are read from it. */
  MLFLOW_TRACKING_URI?: string;
  /** Secret: a bearer token for it, when it asks for one. */
  MLFLOW_TRACKING_TOKEN?: string;
  /** The MLflow UI's address as users reach it: run views link their MLflow runs there (none without it). */
  MLFLOW_UI_URL?: string;
  /** Lifetime of a cluster's bootstrap token, in seconds (default 3600). */
  BOOTSTRAP_TTL_SECONDS?: string;

  // NATS (all optional: without them the API works and nothing is published). Made by
  // scripts/nats/setup.ts; secrets in production, `--var` under wrangler dev.
  /** The Durable Object that holds the NATS connection and drains the outbox. */
  NATS_PUBLISHER?: DurableObjectNamespace;
  /** WebSocket URL(s) the control plane connects to, comma-separated. */
  NATS_WS_URL?: string;
  /** NATS URL(s) handed to agents at registration, comma-separated. */
  NATS_URL?: string;
  NATS_CONTROL_USER_JWT?: string;
  NATS_CONTROL_USER_SEED?: string;
  /** Signs agents' user JWTs. */
  NATS_ACCOUNT_SIGNING_SEED?: string;
  NATS_APP_ACCOUNT?: string;
  /** Re-signs the APP account JWT when credentials are revoked; pushed as the SYS user. */
  NATS_OPERATOR_SIGNING_SEED?: string;
  NATS_SYS_USER_JWT?: string;
  NATS_SYS_USER_SEED?: string;
}

/** What handlers find on the Hono context after authentication. */
export interface Principal {
  workspaceId: string;
  scope: "admin" | "write" | "read";
  /** True only for the PARALLELS_ADMIN_TOKEN secret: it may also create workspaces. */
  root: boolean;
  tokenId: string | null;
}

export type AppEnv = {
  Bindings: Env;
  Variables: { principal: Principal; db: import("./db").Db; cluster?: { id: string; workspaceId: string; name: string } };
};
