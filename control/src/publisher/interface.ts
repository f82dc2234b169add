/**
 * What the control plane asks of NATS. The Durable Object holding the NATS connection implements
 * it (workerd cannot share one connection across requests); `publisherFor` returns null when
 * this control plane has no NATS configured, and the callers say so.
 */
export interface Publisher {
  /** Creates (or confirms) the durable consumer `agent-<clusterId>` on the WORK stream. */
  ensureConsumer(clusterId: string): Promise<void>;
  /** Publishes what the outbox holds now; failures are retried by the publisher's alarm. */
  kick(): Promise<void>;
  /** Pushes a re-signed APP account JWT (with the full revocation list) to the NATS resolver. */
  pushAccountJwt(jwt: string): Promise<void>;
}
