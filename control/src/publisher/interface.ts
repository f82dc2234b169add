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
  /**
   * Makes NATS hold the full revocation list of `nats_revocations`: re-signs the APP account JWT
   * and pushes it when the list grew since the last confirmed push; retried by alarm on failure.
   */
  syncRevocations(): Promise<void>;
}
