import { createHash } from "node:crypto";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import { connect as tcpConnect, type AddressInfo } from "node:net";
import { getGlobalDispatcher, setGlobalDispatcher } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createControlPlaneClient } from "./control";
import { describeProxy, installProxy, proxyFromEnv, redactProxyUrl } from "./proxy";

describe("proxy settings", () => {
  it("redacts a proxy URL's user and password", () => {
    expect(redactProxyUrl("http://alice:s3cret@proxy.example.test:3128/")).toBe("http://***:***@proxy.example.test:3128");
    expect(redactProxyUrl("https://token@proxy.example.test")).toBe("https://***@proxy.example.test");
    expect(redactProxyUrl("proxy.example.test:3128")).toBe("http://proxy.example.test:3128");
    expect(redactProxyUrl("http://[::1")).toBe("(not a URL)");
  });

  it("describes where https and http requests go, as undici routes them", () => {
    const { settings } = proxyFromEnv({ HTTP_PROXY: "http://u:p@proxy.example.test:3128", NO_PROXY: "localhost" });
    expect(describeProxy(settings!)).toEqual({ https: "http://***:***@proxy.example.test:3128", http: "http://***:***@proxy.example.test:3128", noProxy: "localhost" });
    expect(describeProxy(proxyFromEnv({ HTTPS_PROXY: "https://proxy.example.test" }).settings!)).toEqual({ https: "https://proxy.example.test", http: "direct", noProxy: "" });
    expect(JSON.stringify(describeProxy(settings!))).not.toContain("p@");
  });

  it("empty variables are unset; problems name the variable", () => {
    expect(proxyFromEnv({ HTTPS_PROXY: " ", HTTP_PROXY: "" })).toEqual({ settings: null, problems: [], ignoredNoProxy: [] });
    expect(proxyFromEnv({ HTTP_PROXY: "ftp://proxy.example.test" }).problems).toEqual(["HTTP_PROXY: expected an http:// or https:// proxy URL, got ftp://"]);
    expect(proxyFromEnv({ https_proxy: "http://a b" }).problems).toEqual(['https_proxy: "(not a URL)" is not a URL']);
  });
});

/**
 * installProxy for real in this process: fetch and Node's WebSocket go through a CONNECT proxy, and
 * NO_PROXY hosts do not. The proxy here is a stand-in (a few lines of node:http); the real one,
 * Debian's tinyproxy, is in test/hybrid/proxy.test.ts.
 */
describe("installProxy", () => {
  let target: Server;
  let proxy: Server;
  const connects: string[] = [];
  const previous = getGlobalDispatcher();
  const port = (s: Server) => (s.address() as AddressInfo).port;

  beforeAll(async () => {
    target = createServer((req, res) => res.end(`hello ${req.url}`));
    target.on("upgrade", (req, socket) => {
      // Enough of RFC 6455 to open: the test needs the handshake through the tunnel, not frames.
      const key = req.headers["sec-websocket-key"];
      const accept = createHash("sha1").update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64");
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    });
    proxy = createServer((_req, res) => res.writeHead(405).end());
    proxy.on("connect", (req, client) => {
      if (req.headers["proxy-authorization"] !== `Basic ${Buffer.from("agent:right").toString("base64")}`) {
        client.end("HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n");
        return;
      }
      connects.push(req.url ?? "");
      const [host, p] = (req.url ?? "").split(":");
      const upstream = tcpConnect(Number(p), host!, () => {
        client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
        upstream.pipe(client).pipe(upstream);
      });
      upstream.on("error", () => client.destroy());
      client.on("error", () => upstream.destroy());
    });
    target.listen(0, "127.0.0.1");
    proxy.listen(0, "127.0.0.1");
    await Promise.all([once(target, "listening"), once(proxy, "listening")]);
  });

  afterAll(async () => {
    setGlobalDispatcher(previous);
    target.closeAllConnections();
    proxy.closeAllConnections();
    target.close();
    proxy.close();
  });

  it("sends fetch and WebSocket through the proxy as CONNECT tunnels, and NO_PROXY hosts directly", async () => {
    const proxyUrl = `http://agent:right@127.0.0.1:${port(proxy)}`;
    await installProxy({ httpsProxy: null, httpProxy: proxyUrl, noProxy: "" });
    expect(await (await fetch(`http://127.0.0.1:${port(target)}/a`)).text()).toBe("hello /a");
    const ws = new WebSocket(`ws://127.0.0.1:${port(target)}/nats`);
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = reject;
    });
    ws.close();
    expect(connects).toEqual([`127.0.0.1:${port(target)}`, `127.0.0.1:${port(target)}`]);

    connects.length = 0;
    await installProxy({ httpsProxy: null, httpProxy: proxyUrl, noProxy: "127.0.0.1" });
    expect(await (await fetch(`http://127.0.0.1:${port(target)}/b`)).text()).toBe("hello /b");
    expect(connects).toEqual([]);
  });

  it("a proxy refusing the agent's credentials is named in the control plane client's error, without them", async () => {
    await installProxy({ httpsProxy: null, httpProxy: `http://agent:wrong@127.0.0.1:${port(proxy)}`, noProxy: "" });
    const client = createControlPlaneClient({ baseUrl: `http://127.0.0.1:${port(target)}` });
    const err = await client.heartbeat("c", { agentVersion: "0", running: 0 } as never).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/^POST \/v1\/agent\/heartbeat: no answer from http:\/\/127\.0\.0\.1:\d+: fetch failed: .*407/);
    expect((err as Error).message).not.toContain("wrong");
  });
});
