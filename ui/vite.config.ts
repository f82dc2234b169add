/**
 * Builds the web UI into ui/dist, which the Worker serves as static assets (wrangler.toml
 * `[assets]`). Everything is bundled: no external fonts, scripts or CDNs, so the UI works on a
 * machine with no internet. `npm run build` (and `npm ci`'s prepare) runs it.
 */
import { fileURLToPath } from "node:url";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  // Relative asset URLs: the UI works under any path prefix the Worker is served at.
  base: "./",
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true, chunkSizeWarningLimit: 1500 },
  logLevel: "warn",
});
