// control/src/publisher/work-stream.ts against a real nats-server, as the control plane's user:
// stream WORK and the per-cluster consumers end with our settings whatever was there before, and
// the server's answers are told apart by their JetStream error codes.
import { JetStreamApiError, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { jwtAuthenticator, type NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ensureAgentConsumer, ensureWorkStream, jetStreamErrorCode, JS_ERROR } from "../../control/src/publisher/work-stream";
import { agentConsumerConfig, WORK_STREAM, workStreamConfig } from "../../proto/nats";
import { startTestNatsServer, type TestNatsServer } from "../support/nats-server";

/** The server's refusal of `op`, which must be a JetStream API error. */
async function refusal(op: Promise<unknown>): Promise<JetStreamApiError> {
  const err = await op.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(JetStreamApiError);
  return err as JetStreamApiError;
}

describe("jetStreamErrorCode", () => {
  it("is the code of the server's answer, never read from a message", () => {
    expect(jetStreamErrorCode(new Error("stream name already in use with a different configuration"))).toBeUndefined();
    expect(jetStreamErrorCode(new JetStreamApiError({ err_code: 10058, code: 400, description: "whatever the wording" }))).toBe(10058);
  });
});

describe("stream WORK and the agent consumers, made idempotently (real nats-server)", () => {
  // A server per test: the control user may not delete streams, so each test starts from none.
  let server: TestNatsServer;
  let nc: NatsConnection;
  let jsm: JetStreamManager;

  beforeEach(async () => {
    server = await startTestNatsServer();
    nc = await connect({
      servers: server.url,
      authenticator: jwtAuthenticator(server.secrets.NATS_CONTROL_USER_JWT, new TextEncoder().encode(server.secrets.NATS_CONTROL_USER_SEED)),
    });
    jsm = await jetstreamManager(nc);
  });

  afterEach(async () => {
    await nc?.close();
    await server?.stop();
  });

  it("creates them, and doing it again changes nothing", async () => {
    await ensureWorkStream(jsm);
    await ensureWorkStream(jsm);
    await ensureAgentConsumer(jsm, "A");
    await ensureAgentConsumer(jsm, "A");
    expect((await jsm.streams.info(WORK_STREAM)).config).toMatchObject(workStreamConfig());
    expect((await jsm.consumers.info(WORK_STREAM, "agent-A")).config).toMatchObject(agentConsumerConfig("A"));
    expect(await jsm.consumers.list(WORK_STREAM).next()).toHaveLength(1);
  });

  it("a stream WORK with other settings: the server answers 10058, and the stream is brought to ours", async () => {
    await jsm.streams.add({ ...workStreamConfig({ duplicateWindowMs: 60_000 }), max_msgs: 10 });
    const err = await refusal(jsm.streams.add(workStreamConfig()));
    expect(err.code).toBe(JS_ERROR.streamNameExists);
    expect(jetStreamErrorCode(err)).toBe(10058);

    await ensureWorkStream(jsm);
    const config = (await jsm.streams.info(WORK_STREAM)).config;
    expect(config.duplicate_window).toBe(600_000_000_000);
    // Settings we do not set are left as they were: ours are brought back, nothing else.
    expect(config.max_msgs).toBe(10);
  });

  it("a consumer with other settings: the server answers 10148, and the consumer is brought to ours", async () => {
    await ensureWorkStream(jsm);
    await jsm.consumers.add(WORK_STREAM, { ...agentConsumerConfig("A"), max_deliver: 9, max_ack_pending: 7 });
    const err = await refusal(jsm.consumers.add(WORK_STREAM, agentConsumerConfig("A")));
    expect(err.code).toBe(JS_ERROR.consumerAlreadyExists);

    await ensureAgentConsumer(jsm, "A");
    expect((await jsm.consumers.info(WORK_STREAM, "agent-A")).config).toMatchObject({ max_deliver: 5, max_ack_pending: 1000 });
  });

  it("any other refusal is not mistaken for 'exists': a consumer without its stream fails with the server's error", async () => {
    const err = await refusal(ensureAgentConsumer(jsm, "A"));
    expect(err.code).toBe(10059); // JSStreamNotFoundErr
    expect(jetStreamErrorCode(err)).not.toBe(JS_ERROR.consumerAlreadyExists);
    await expect(jsm.streams.info(WORK_STREAM)).rejects.toThrow();
  });
});
