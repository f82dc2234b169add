import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "./log";

describe("logs", () => {
  it("are JSON lines and never carry credentials, JWTs, seeds or tokens", () => {
    const lines: string[] = [];
    const destination = new Writable({
      write: (c, _e, cb) => {
        lines.push(String(c));
        cb();
      },
    });
    const log = createLogger({ destination: destination as never });
    log.info({ credential: "plc_SECRET1", nats: { jwt: "eyJSECRET2", seed: "SUSECRET3" }, bootstrapToken: "plb_SECRET4", headers: { authorization: "Bearer SECRET5" }, clusterId: "c1" }, "hello");
    expect(lines).toHaveLength(1);
    const rec = JSON.parse(lines[0]!);
    expect(rec).toMatchObject({ level: "info", msg: "hello", clusterId: "c1", name: "parallels-agent" });
    expect(lines[0]).not.toMatch(/SECRET/);
  });
});
