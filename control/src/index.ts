/** The control-plane Worker: the HTTP API and the Cron Trigger. */
import { newApp } from "./app";
import { getDb } from "./db";
import type { Env } from "./env";
import { publisherFor } from "./publisher";
import { pruneExpired } from "./retention";
import { controlPlaneMlflow } from "./runs/logs";
import { handleLostClusters } from "./runs/lost";
import { runDueSchedules } from "./schedules/tick";

export { NatsPublisher } from "./publisher";

const app = newApp();

export default {
  fetch: app.fetch,
  async scheduled(controller, env, _ctx) {
    const report = await runDueSchedules(getDb(env.DB), controller.scheduledTime);
    console.log(JSON.stringify({ msg: "schedules tick", ...report }));
    // Attempts on clusters silent past their DAG's grace (onClusterLost), before the kick sends their messages.
    try {
      const lost = await handleLostClusters(getDb(env.DB), controller.scheduledTime, env.MLFLOW_TRACKING_URI ? controlPlaneMlflow(env) : undefined);
      if (lost.lost > 0) console.log(JSON.stringify({ msg: "attempts lost with their cluster", ...lost }));
    } catch (e) {
      console.error(JSON.stringify({ msg: "checking for lost clusters failed", error: (e as Error).message }));
    }
    // Safety nets: whatever the outbox still holds is published, and NATS holds every revocation.
    const publisher = publisherFor(env);
    await publisher?.kick();
    await publisher?.syncRevocations().catch(() => undefined);
    // Housekeeping last: its failure (D1 busy) must not cost the safety nets; the next tick retries.
    try {
      const pruned = await pruneExpired(getDb(env.DB), controller.scheduledTime);
      if (pruned.outbox + pruned.events > 0) console.log(JSON.stringify({ msg: "pruned expired rows", ...pruned }));
    } catch (e) {
      console.error(JSON.stringify({ msg: "pruning expired rows failed", error: (e as Error).message }));
    }
  },
} satisfies ExportedHandler<Env>;
