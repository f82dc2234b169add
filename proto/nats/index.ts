/**
 * @module
 * The NATS contract between the control plane, the agents and the server, as data (runtime-free:
 * no NATS client code, no Node or workerd APIs):
 * - `names`: stream `WORK`, subjects, consumer names, inbox prefixes, message ids.
 * - `jetstream`: the stream's and the per-cluster consumer's configuration.
 * - `permissions`: what an agent, the control plane and the SYS user may publish and subscribe.
 * - `account`: the claims of the APP account (JetStream limits, revocations).
 * Signing credentials with these is the control plane's job (control/src/nats).
 */
export * from "./account";
export * from "./jetstream";
export * from "./names";
export * from "./permissions";
