/**
 * A fault-injecting HTTP proxy for tests (the job toxiproxy does): forwards every request on
 * 127.0.0.1 to `target`, except those a test chose to *swallow* — held with no answer until the
 * caller is gone, then dropped, never forwarded. It puts a client exactly at a crash point:
 * "the request that finishes X was sent, X did not happen, and the client dies now".
 */
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface HeldRequest {
  method: string;
  path: string;
  body: string;
}

export interface FaultProxy {
  url: string;
  /** From now on, requests matching `match` are held unanswered; resolves with the first one held. */
  swallow(match: (r: HeldRequest) => boolean): Promise<HeldRequest>;
  /** Stops swallowing; requests held so far are dropped (their connections closed), not forwarded. */
  heal(): void;
  close(): Promise<void>;
}

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const upstream = new URL(target);
  let rule: { match: (r: HeldRequest) => boolean; first: (r: HeldRequest) => void } | null = null;
  const held = new Set<ServerResponse>();

  const forward = (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    const out = httpRequest({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...req.headers, host: upstream.host } }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    out.on("error", () => res.destroy());
    out.end(body);
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const seen: HeldRequest = { method: req.method ?? "GET", path: req.url ?? "/", body: body.toString("utf8") };
      if (rule?.match(seen)) {
        held.add(res);
        res.on("close", () => held.delete(res));
        rule.first(seen);
        return;
      }
      forward(req, res, body);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const heal = () => {
    rule = null;
    for (const res of held) res.destroy();
    held.clear();
  };
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    swallow(match) {
      return new Promise((first) => {
        let told = false;
        const once = (r: HeldRequest) => {
          if (told) return;
          told = true;
          first(r);
        };
        rule = { match, first: once };
      });
    },
    heal,
    close() {
      heal();
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}
