/** The control-plane Worker: the HTTP API and the Cron Trigger. */
import { newApp } from "./app";
import { getDb } from "./db";
import type { Env } from "./env";
import { publisherFor } from "./publisher";
import { runDueSchedules } from "./schedules/tick";

export { NatsPublisher } from "./publisher";

const app = newApp();

export default {
  fetch: app.fetch,
  async scheduled(controller, env, _ctx) {
    const report = await runDueSchedules(getDb(env.DB), controller.scheduledTime);
    console.log(JSON.stringify({ msg: "schedules tick", ...report }));
    // Also a safety net for the outbox: whatever is still pending is published now.
    await publisherFor(env)?.kick();
  },
} satisfies ExportedHandler<Env>;
