/** The control-plane Worker: the HTTP API and the Cron Trigger. */
import { newApp } from "./app";
import { getDb } from "./db";
import type { Env } from "./env";
import { runDueSchedules } from "./schedules/tick";

const app = newApp();

export default {
  fetch: app.fetch,
  async scheduled(controller, env, _ctx) {
    const report = await runDueSchedules(getDb(env.DB), controller.scheduledTime);
    console.log(JSON.stringify({ msg: "schedules tick", ...report }));
  },
} satisfies ExportedHandler<Env>;
