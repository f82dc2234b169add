/**
 * Where outbox messages go. The NATS JetStream publisher (a Durable Object holding the
 * connection) implements this; the outbox drain does not know about NATS.
 */
export interface OutboundMessage {
  subject: string;
  /** De-duplication id (NATS `Nats-Msg-Id`): publishing the same id twice delivers once. */
  msgId: string;
  payload: string;
}

export interface Dispatcher {
  /** Resolves once the message is durably accepted (JetStream ack); rejects to retry later. */
  publish(message: OutboundMessage): Promise<void>;
}
