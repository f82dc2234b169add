import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

// Two projects: `node` for the runtime-free modules (proto/, agent/) and `workers`, which runs the
// control plane inside workerd with a local D1 migrated by the real migrations.
export default defineConfig({
  test: {
    // The Python tools (mlflow, nats-server) on first use, once, before any test file runs.
    globalSetup: ["./test/support/global-setup.ts"],
    projects: [
      {
        test: {
          name: "node",
          // Unit tests sit beside their code; cross-package tests live in test/node.
          include: ["{proto,agent,control,db}/**/*.test.ts", "test/node/**/*.test.ts"],
          environment: "node",
        },
      },
      {
        plugins: [
          cloudflareTest(async () => ({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: {
                TEST_MIGRATIONS: await readD1Migrations("./db/migrations"),
                PARALLELS_ADMIN_TOKEN: "test-admin-token-0123456789abcdef",
                CORS_ORIGINS: "https://ui.example.test",
                MLFLOW_UI_URL: "https://mlflow.example.test",
              },
            },
          })),
        ],
        test: {
          name: "workers",
          include: ["test/workers/**/*.test.ts"],
          setupFiles: ["./test/workers/apply-migrations.ts"],
        },
      },
    ],
  },
});
