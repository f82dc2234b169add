/** The whole route table, in the order the OpenAPI document lists it. */
import { Health } from "../../../proto/api";
import { agentRoutes } from "./agent";
import { clusterRoutes } from "./clusters";
import { dagRoutes } from "./dags";
import { route, type Route } from "./define";
import { openApiRoute } from "./openapi";
import { runRoutes } from "./runs";
import { scheduleRoutes } from "./schedules";
import { tokenRoutes } from "./tokens";

export { registerRoutes } from "./define";

const health = route({ method: "get", path: "/healthz", summary: "Liveness: the Worker answers", auth: "public", ok: { 200: { description: "alive", schema: Health } } }).handle(async () => ({
  status: 200,
  body: { ok: true },
}));

export const ROUTES: readonly Route[] = [health, openApiRoute(() => ROUTES), ...tokenRoutes, ...clusterRoutes, ...dagRoutes, ...runRoutes, ...agentRoutes, ...scheduleRoutes];
