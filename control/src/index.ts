/** The control-plane Worker: the HTTP API and the Cron Trigger. */
import { newApp } from "./app";
import { getDb } from "./db";
import type { Env } from "./env";
import { runDueSchedules } from "./schedules/tick";

const app = newApp();

export default {
  fetch: app.fetch,
  async scheduled(controller, env, ctx) {
    ctx.waitUntil(
      runDueSchedules(getDb(env.DB), controller.scheduledTime).then((report) => {
        console.log(JSON.stringify({ msg: "schedules tick", ...report }));
      }),
    );
  },
} satisfies ExportedHandler<Env>;
