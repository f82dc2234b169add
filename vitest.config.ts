import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

// Six projects: `node` for the runtime-free modules (proto/, agent/) and end to end with real
// servers; `workers`, which runs the control plane inside workerd with a local D1 migrated by the
// real migrations; `k8s`, against a real Kubernetes control plane (scripts/k8s/harness.ts);
// `browser`, the web UI in Debian's Chromium against the embedded default;
// `images`, real image builds (buildah, podman, BuildKit) with a real registry on 127.0.0.1;
// `hybrid`, the agent in an on-prem site (a network namespace) whose only way out is a proxy.
// A project's globalSetup runs only when that project has test files to run: `vitest run
// --project node` starts no cluster, `--project k8s` installs no Python tools.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "node",
          // Unit tests sit beside their code; cross-package tests live in test/node.
          include: ["{proto,agent,control,db}/**/*.test.ts", "test/node/**/*.test.ts"],
          environment: "node",
          // The Python tools (mlflow, nats-server) on first use, once, before any test file runs.
          globalSetup: ["./test/support/global-setup.ts"],
          // A guard against hangs, not a measure of speed (that is `npm run bench`): the suite
          // starts real servers and processes on 2 cores, and a busy machine slows them down.
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: "browser",
          include: ["test/browser/**/*.test.ts"],
          environment: "node",
          // The Python tools and the UI's bundle, as for `node` (Chromium comes on first use, test/browser/chromium.ts).
          globalSetup: ["./test/support/global-setup.ts"],
          // A whole run of the example DAG is watched in the page: real processes on 2 cores.
          testTimeout: 180_000,
          hookTimeout: 300_000,
        },
      },
      {
        test: {
          name: "k8s",
          include: ["test/k8s/**/*.test.ts"],
          environment: "node",
          // Builds the harness binaries on first use (about 12 minutes once), then starts ONE
          // cluster for the project; tests reach it with inject("k8s") (test/k8s/support.ts).
          globalSetup: ["./test/k8s/global-setup.ts"],
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
      {
        test: {
          name: "images",
          include: ["test/images/**/*.test.ts"],
          environment: "node",
          // Installs Debian's container tools on first use (apt-get, as root, once), makes the
          // Debian-made Python base image (cached by key outside the clone, about 70 s once) and
          // starts ONE registry on 127.0.0.1 for the project (test/images/global-setup.ts).
          globalSetup: ["./test/images/global-setup.ts"],
          testTimeout: 600_000,
          hookTimeout: 600_000,
        },
      },
      {
        test: {
          name: "hybrid",
          include: ["test/hybrid/**/*.test.ts"],
          environment: "node",
          // An on-prem site behind a proxy: installs Debian's tinyproxy, socat, iproute2 and openssl
          // on first use (apt-get, as root, once), the Python tools and the UI bundle, and removes
          // the network namespaces a killed suite left (test/hybrid/global-setup.ts). Needs root.
          globalSetup: ["./test/hybrid/global-setup.ts"],
          testTimeout: 240_000,
          hookTimeout: 600_000,
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
          testTimeout: 30_000,
        },
      },
    ],
  },
});
