/**
 * A TLS edge on 127.0.0.1, as a site's ingress or load balancer puts TLS before a service (NATS's
 * WebSocket listener → `wss://`, the control plane → `https://`): socat terminates TLS with a
 * certificate of the test's CA and forwards the bytes to the plain port. The client must trust
 * that CA (NODE_EXTRA_CA_CERTS for the agent): what the chart's `caBundle` is for.
 */
import { spawnSync } from "node:child_process";
import { launch, logTail, stopProcesses } from "../k8s/processes";
import { freePort } from "../local/ports";

export interface TlsEdge {
  port: number;
  stop(): Promise<void>;
}

export async function startTlsEdge(runDir: string, o: { name: string; cert: string; key: string; targetPort: number }): Promise<TlsEdge> {
  const port = await freePort();
  const name = `tls-edge-${o.name}`;
  await launch(runDir, {
    name,
    prefix: [],
    binary: "socat",
    args: [`OPENSSL-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork,cert=${o.cert},key=${o.key},verify=0`, `TCP:127.0.0.1:${o.targetPort}`],
  });
  const deadline = Date.now() + 10_000;
  while (!spawnSync("ss", ["-Hltn", `sport = :${port}`], { encoding: "utf8" }).stdout.includes(`127.0.0.1:${port}`)) {
    if (Date.now() > deadline) throw new Error(`the TLS edge ${name} did not listen on 127.0.0.1:${port}:\n${logTail(runDir, name)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { port, stop: async () => void (await stopProcesses(runDir, [name])) };
}
