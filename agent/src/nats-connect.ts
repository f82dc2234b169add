/**
 * Opens a NATS connection with the transport its URLs need (nats-urls.ts): TCP through
 * `@nats-io/transport-node`, WebSocket through `@nats-io/nats-core`'s `wsconnect`, which uses
 * Node's built-in WebSocket — and so the global dispatcher, the proxy of proxy.ts (CONNECT) and
 * Node's CAs plus `NODE_EXTRA_CA_CERTS` for `wss://`.
 *
 * nats.js keeps its transport in one module-wide slot that each `connect`/`wsconnect` sets and
 * that reconnects read: the agent holds one connection at a time (nats.ts), so that is safe here.
 */
import { type ConnectionOptions, type NatsConnection, wsconnect } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { type NatsTransport, natsTransportOfAll } from "./nats-urls";

export async function connectNats(opts: ConnectionOptions & { servers: string[] }): Promise<{ nc: NatsConnection; transport: NatsTransport }> {
  const transport = natsTransportOfAll(opts.servers);
  if (transport === "tcp") return { nc: await connect(opts), transport };
  if (typeof globalThis.WebSocket !== "function") throw new Error(`NATS over WebSocket (${opts.servers.join(",")}) needs Node 22 or later (a global WebSocket)`);
  return { nc: await wsconnect(opts), transport };
}
