// Bindings the workers tests see through `env` from "cloudflare:test" (see vitest.config.ts).
declare namespace Cloudflare {
  interface Env {
    DB: D1Database;
    PARALLELS_ADMIN_TOKEN?: string;
    CORS_ORIGINS?: string;
    MLFLOW_UI_URL?: string;
    PUBLIC_URL?: string;
    BOOTSTRAP_TTL_SECONDS?: string;
    TEST_MIGRATIONS: import("cloudflare:test").D1Migration[];
  }
}
