import { describe, expect, it } from "vitest";
import { natsTransportOf, natsTransportOfAll, natsUrlProblem } from "./nats-urls";

describe("NATS URLs", () => {
  it("tells the transport by scheme; host:port is TCP", () => {
    expect(["nats://a:4222", "tls://a:4443", "a:4222", "NATS://a"].map(natsTransportOf)).toEqual(["tcp", "tcp", "tcp", "tcp"]);
    expect(["ws://a:4280", "wss://a", "WSS://a/nats"].map(natsTransportOf)).toEqual(["websocket", "websocket", "websocket"]);
    expect(natsTransportOf("http://a")).toBeNull();
  });

  it("a list has one transport; mixing or an unknown scheme is an error naming the URLs", () => {
    expect(natsTransportOfAll(["wss://a", "ws://b:80"])).toBe("websocket");
    expect(natsTransportOfAll(["nats://a", "b:4222"])).toBe("tcp");
    expect(() => natsTransportOfAll(["nats://a", "wss://b"])).toThrow("NATS URLs nats://a,wss://b mix TCP (nats://, tls://) and WebSocket (ws://, wss://); use one kind");
    expect(() => natsTransportOfAll(["https://a"])).toThrow(/unknown NATS URL scheme in https:\/\/a/);
  });

  it("problems: scheme, host, credentials, a path on TCP", () => {
    expect(natsUrlProblem("wss://nats.example.test/ws")).toBeNull();
    expect(natsUrlProblem("ftp://a")).toBe('"ftp://a": expected nats://, tls://, ws:// or wss://, got ftp://');
    expect(natsUrlProblem("nats://a/b")).toBe('"nats://a/b" must not have a path');
    expect(natsUrlProblem("ws://u:p@a")).toMatch(/must not contain a user or password/);
    expect(natsUrlProblem("nats://:4222")).toMatch(/has no host|is not a URL/);
  });
});
