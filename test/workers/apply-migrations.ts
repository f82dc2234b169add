import { applyD1Migrations, env } from "cloudflare:test";

// The same migrations wrangler applies (db/migrations), on the test's local D1.
await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
