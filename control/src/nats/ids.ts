// The NATS names are part of the contract shared with the agent: they live in proto/.
export * from "../../../proto/nats";
