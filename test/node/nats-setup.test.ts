// scripts/nats/setup.ts: one-time keys, idempotent re-runs, the server config it writes.
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as natsJwt from "@nats-io/jwt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setupNats } from "../../scripts/nats/setup";

describe("scripts/nats/setup.ts", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "parallels-nats-setup-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("generates keys once, keeps them on re-runs, rewrites the config only for new ports", async () => {
    const first = await setupNats({ stateDir: dir, port: 14222, httpPort: 18222, wsPort: 14280 });
    expect(first.createdKeys).toBe(true);
    expect(first.configChanged).toBe(true);

    const again = await setupNats({ stateDir: dir, port: 14222, httpPort: 18222, wsPort: 14280 });
    expect(again.createdKeys).toBe(false);
    expect(again.configChanged).toBe(false);
    expect(again.secrets).toEqual(first.secrets);

    const moved = await setupNats({ stateDir: dir, port: 24222, httpPort: 28222, wsPort: 24280 });
    expect(moved.createdKeys).toBe(false);
    expect(moved.configChanged).toBe(true);
    expect(moved.secrets).toEqual(first.secrets);
    expect(moved.keys.appAccount.jwt).toBe(first.keys.appAccount.jwt); // the preload keeps its iat
    expect(moved.url).toBe("nats://127.0.0.1:24222");
    expect(moved.wsUrl).toBe("ws://127.0.0.1:24280");

    expect((await stat(join(dir, "keys.json"))).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, "secrets.json"))).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(moved.secretsPath, "utf8"))).toEqual(first.secrets);
  });

  it("writes an operator-mode config: full resolver, preloads, JetStream and WebSocket on 127.0.0.1", async () => {
    const r = await setupNats({ stateDir: dir, port: 24222, httpPort: 28222, wsPort: 24280 });
    const conf = await readFile(r.configPath, "utf8");
    expect(conf).toContain('host: "127.0.0.1"\nport: 24222\nhttp: "127.0.0.1:28222"');
    expect(conf).toMatch(/resolver: \{\n {2}type: full\n {2}dir: ".*\/jwt"\n {2}allow_delete: false/);
    expect(conf).toContain(`${r.keys.sysAccount.publicKey}: "${r.keys.sysAccount.jwt}"`);
    expect(conf).toContain(`${r.keys.appAccount.publicKey}: "${r.keys.appAccount.jwt}"`);
    expect(conf).toContain(`system_account: ${r.keys.sysAccount.publicKey}`);
    expect(conf).toMatch(/jetstream: \{\n {2}store_dir: ".*\/jetstream"\n\}/);
    expect(conf).toContain('websocket: {\n  host: "127.0.0.1"\n  port: 24280\n  no_tls: true\n}');
    expect(conf).not.toMatch(/\b0\.0\.0\.0\b/); // no wildcard listener
  });

  it("signs the chain operator → accounts → users as nats-auth.md lists", async () => {
    const { keys } = await setupNats({ stateDir: dir, port: 24222, httpPort: 28222, wsPort: 24280 });
    const op = natsJwt.decode<{ signing_keys: string[]; system_account: string }>(keys.operator.jwt);
    expect(op.iss).toBe(keys.operator.publicKey);
    expect(op.nats.signing_keys).toEqual([keys.operator.signingKey]);
    expect(op.nats.system_account).toBe(keys.sysAccount.publicKey);

    const app = natsJwt.decode<{ limits: Record<string, unknown>; signing_keys: string[] }>(keys.appAccount.jwt);
    expect(app.iss).toBe(keys.operator.signingKey);
    expect(app.nats.signing_keys).toEqual([keys.appAccount.signingKey]);
    expect(app.nats.limits).toMatchObject({ mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 });
    expect(natsJwt.decode(keys.sysAccount.jwt).iss).toBe(keys.operator.signingKey);

    const control = natsJwt.decode<{ pub: { allow: string[] }; sub: { allow: string[] }; issuer_account: string }>(keys.controlUser.jwt);
    expect(control.iss).toBe(keys.appAccount.signingKey);
    expect(control.nats.issuer_account).toBe(keys.appAccount.publicKey);
    expect(control.nats.pub!.allow).toEqual([
      "work.>",
      "$JS.API.INFO",
      "$JS.API.STREAM.CREATE.WORK",
      "$JS.API.STREAM.UPDATE.WORK",
      "$JS.API.STREAM.INFO.WORK",
      "$JS.API.STREAM.MSG.GET.WORK",
      "$JS.API.CONSUMER.CREATE.WORK.>",
      "$JS.API.CONSUMER.DURABLE.CREATE.WORK.>",
      "$JS.API.CONSUMER.INFO.WORK.>",
      "$JS.API.CONSUMER.DELETE.WORK.>",
      "$JS.API.CONSUMER.LIST.WORK",
    ]);
    expect(control.nats.sub!.allow).toEqual(["_INBOX.>"]);

    const sys = natsJwt.decode<{ pub: { allow: string[] } }>(keys.sysUser.jwt);
    expect(sys.iss).toBe(keys.sysAccount.publicKey);
    expect(sys.nats.pub!.allow).toContain("$SYS.REQ.CLAIMS.UPDATE");
  });
});
