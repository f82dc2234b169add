/**
 * The serverless case: a Worker whose fetch handler runs the SDK's scenario against the control
 * plane (test/node/sdk-scenario.ts): POST the scenario's input, get its result. test/node/sdk.test.ts
 * bundles it with esbuild and serves it with its own `wrangler dev` (workerd). It is not a test file
 * of the `workers` project: that one runs the control plane itself in workerd, without NATS or
 * agents, so no run could end there.
 */
import { type ScenarioInput, sdkScenario } from "../node/sdk-scenario";

export default {
  async fetch(request: Request): Promise<Response> {
    if (request.method === "GET") return new Response("ready");
    const input = (await request.json()) as ScenarioInput;
    try {
      return Response.json(await sdkScenario(input));
    } catch (e) {
      return Response.json({ error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) }, { status: 500 });
    }
  },
} satisfies ExportedHandler;
