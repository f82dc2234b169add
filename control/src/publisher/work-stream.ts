/**
 * Brings stream `WORK` and a cluster's consumer to the settings of proto/nats, whether or not
 * they exist yet: create, and when the server answers that one of that name exists with other
 * settings, update it. The server's answer is told apart by its JetStream error code, never by
 * its wording. Plain `@nats-io/jetstream`: used by the publisher Durable Object, tested in Node
 * against a real nats-server (test/node/nats-work-stream.test.ts).
 */
import { JetStreamApiError, type JetStreamManager } from "@nats-io/jetstream";
import { agentConsumerConfig, WORK_STREAM, workStreamConfig } from "../../../proto/nats";

/**
 * JetStream API error codes we act on (`err_code` of the server's answer; nats-server
 * server/errors.json). nats.js 3.4 names only a few (`JetStreamApiCodes`), not these.
 */
export const JS_ERROR = {
  /** `JSStreamNameExistErr`: "stream name already in use with a different configuration". */
  streamNameExists: 10058,
  /** `JSConsumerAlreadyExists`: action CREATE (what `consumers.add` sends) on a consumer that exists with another configuration. */
  consumerAlreadyExists: 10148,
} as const;

/** The JetStream API error code of an error the server answered with; undefined for any other error (timeout, connection, permissions). */
export function jetStreamErrorCode(err: unknown): number | undefined {
  return err instanceof JetStreamApiError ? err.code : undefined;
}

/** Creates stream `WORK`, or brings an existing one to our settings. */
export async function ensureWorkStream(jsm: JetStreamManager): Promise<void> {
  const config = workStreamConfig();
  try {
    await jsm.streams.add(config); // the same settings again: the server answers with the stream
  } catch (err) {
    if (jetStreamErrorCode(err) !== JS_ERROR.streamNameExists) throw err;
    await jsm.streams.update(WORK_STREAM, config);
  }
}

/** Creates the consumer `agent-<clusterId>`, or brings an existing one to our settings. */
export async function ensureAgentConsumer(jsm: JetStreamManager, clusterId: string): Promise<void> {
  const config = agentConsumerConfig(clusterId);
  try {
    await jsm.consumers.add(WORK_STREAM, config);
  } catch (err) {
    if (jetStreamErrorCode(err) !== JS_ERROR.consumerAlreadyExists) throw err;
    await jsm.consumers.update(WORK_STREAM, config.durable_name, config);
  }
}
