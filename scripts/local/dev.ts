/**
 * `npm run dev`: the control plane on 127.0.0.1 with a migrated local D1 (state in .state/dev),
 * until Ctrl-C. The admin token is in .dev.vars.
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { ROOT, startControlPlane } from "./control-plane";
import { localAdminToken } from "./dev-vars";

const { values } = parseArgs({ options: { port: { type: "string", default: "8787" } } });
localAdminToken();
const cp = await startControlPlane({ stateDir: join(ROOT, ".state/dev"), port: Number(values.port), echo: true });
console.log(`\ncontrol plane listening on ${cp.url} (API: ${cp.url}/v1, OpenAPI: ${cp.url}/v1/openapi.json)`);
console.log("admin token: PARALLELS_ADMIN_TOKEN in .dev.vars; Ctrl-C stops");
const stop = () => void cp.stop().then(() => process.exit(0));
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
