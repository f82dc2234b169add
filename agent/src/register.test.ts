// Registration against a fake control plane (a local HTTP server playing POST /v1/agent/register).
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fromPublic } from "@nats-io/nkeys";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Backoff } from "./backoff";
import { createControlPlaneClient } from "./control";
import { createLogger } from "./log";
import { ensureCredentials, FileCredentialStore } from "./register";

const logger = createLogger({ level: "silent" });

describe("registration (fake control plane)", () => {
  let dir: string;
  let url: string;
  let close: () => Promise<void>;
  const statuses: number[] = [];
  const bodies: any[] = [];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "agent-register-"));
    statuses.length = 0;
    bodies.length = 0;
    const server = createServer((req, res) => {
      let text = "";
      req.on("data", (c) => (text += c));
      req.on("end", () => {
        bodies.push(JSON.parse(text));
        const status = statuses.shift() ?? 201;
        res.writeHead(status, { "content-type": "application/json" });
        if (status === 201) {
          res.end(
            JSON.stringify({
              clusterId: "c1",
              clusterName: "local",
              credential: "plc_abc",
              nats: { servers: ["nats://127.0.0.1:4222"], jwt: "eyJ.jwt", inboxPrefix: "_INBOX_c1", stream: "WORK", consumer: "agent-c1" },
              heartbeatSeconds: 15,
            }),
          );
        } else
          res.end(
            JSON.stringify({
              error: {
                code: status === 401 ? "unauthenticated" : "unavailable",
                message: status === 401 ? "unknown or already used bootstrap token" : "NATS is not reachable right now; retry",
                details: [],
              },
            }),
          );
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    close = () => new Promise((r) => server.close(() => r()));
  });
  afterEach(async () => {
    await close();
    await rm(dir, { recursive: true, force: true });
  });

  const ensure = (bootstrapToken?: string) =>
    ensureCredentials({
      store: new FileCredentialStore(join(dir, "credentials.json")),
      client: createControlPlaneClient({ baseUrl: url }),
      controlPlaneUrl: url,
      bootstrapToken,
      agentVersion: "0.1.0",
      logger,
      sleep: async () => {},
      backoff: new Backoff({ random: () => 0 }),
    });

  it("sends only its public key, stores the credentials 0600 with its own seed, and reuses them without a token", async () => {
    statuses.push(503, 503); // NATS not reachable yet: retried
    const creds = await ensure("plb_token");
    expect(bodies).toHaveLength(3);
    expect(bodies[2]).toEqual({ bootstrapToken: "plb_token", natsPublicKey: creds.nats.publicKey, agentVersion: "0.1.0" });
    expect(() => fromPublic(creds.nats.publicKey)).not.toThrow();
    expect(JSON.stringify(bodies)).not.toContain(creds.nats.seed);
    expect(creds).toMatchObject({ clusterId: "c1", credential: "plc_abc", nats: { jwt: "eyJ.jwt", inboxPrefix: "_INBOX_c1" } });
    expect((await stat(join(dir, "credentials.json"))).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(join(dir, "credentials.json"), "utf8")).nats.seed).toBe(creds.nats.seed);

    const again = await ensure(undefined);
    expect(again).toEqual(creds);
    expect(bodies).toHaveLength(3); // no second registration
  });

  it("a refused token is final (no retry loop)", async () => {
    statuses.push(401);
    await expect(ensure("plb_used")).rejects.toThrow(/registration refused: POST \/v1\/agent\/register: 401 unknown or already used bootstrap token/);
    expect(bodies).toHaveLength(1);
    await expect(ensure(undefined)).rejects.toThrow(/no stored credentials/);
  });
});
