/**
 * NATS server URLs the agent accepts, and which transport each needs: `nats://`/`tls://` (or a bare
 * `host:port`) are TCP (`@nats-io/transport-node`); `ws://`/`wss://` are NATS over WebSocket — the
 * way out of a site whose only exit is an HTTP(S) proxy, as the WebSocket goes through it (CONNECT).
 * One connection uses one transport, so a list must not mix the two.
 */

export type NatsTransport = "tcp" | "websocket";

const TCP = ["nats:", "tls:"];
const WEBSOCKET = ["ws:", "wss:"];

/** The transport of one URL (`host:port` without a scheme is TCP). Unknown schemes: `null`. */
export function natsTransportOf(url: string): NatsTransport | null {
  if (!url.includes("://")) return "tcp";
  const scheme = url.slice(0, url.indexOf("://") + 1).toLowerCase();
  return TCP.includes(scheme) ? "tcp" : WEBSOCKET.includes(scheme) ? "websocket" : null;
}

/** What is wrong with one URL, or `null`. WebSocket URLs may have a path (a listener behind an ingress); TCP ones may not. */
export function natsUrlProblem(raw: string): string | null {
  const s = raw.includes("://") ? raw : `nats://${raw}`;
  if (!URL.canParse(s)) return `${JSON.stringify(raw)} is not a URL`;
  const u = new URL(s);
  const transport = natsTransportOf(s);
  if (transport === null) return `${JSON.stringify(raw)}: expected nats://, tls://, ws:// or wss://, got ${u.protocol}//`;
  if (!u.hostname) return `${JSON.stringify(raw)} has no host`;
  if (u.username || u.password) return `${JSON.stringify(raw)} must not contain a user or password (the agent authenticates with its own NATS credentials)`;
  if (transport === "tcp" && u.pathname && u.pathname !== "/") return `${JSON.stringify(raw)} must not have a path`;
  return null;
}

/** The one transport of a list; throws naming the URLs when it mixes both or holds an unknown scheme. */
export function natsTransportOfAll(urls: readonly string[]): NatsTransport {
  const kinds = new Set(urls.map(natsTransportOf));
  if (kinds.has(null)) throw new Error(`unknown NATS URL scheme in ${urls.join(",")}: expected nats://, tls://, ws:// or wss://`);
  if (kinds.size > 1) throw new Error(`NATS URLs ${urls.join(",")} mix TCP (nats://, tls://) and WebSocket (ws://, wss://); use one kind`);
  return kinds.has("websocket") ? "websocket" : "tcp";
}
