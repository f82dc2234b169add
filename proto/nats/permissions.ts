/**
 * Who may do what on NATS (recipe: shared/design/nats-auth.md): the publish/subscribe rights of
 * each kind of user. The control plane mints agent users with {@link agentPermissions};
 * scripts/nats/setup.ts signs the control plane's and the SYS user with the other two. The tests
 * check each against a real nats-server, including what it refuses.
 */
import { agentConsumerName, agentInboxPrefix, WORK_STREAM } from "./names";

/** Permission lists as the server reads them. An empty `allow` list means "everything". */
export interface NatsPermission {
  allow?: string[];
  deny?: string[];
}

/** Publish and subscribe rights of one user. */
export interface NatsPermissions {
  pub: { allow: string[] };
  sub: { allow: string[] };
}

/**
 * A cluster's agent: the minimum `@nats-io/jetstream` 3.4 pull consumers need. Publish:
 * next-message requests, acks and info of its own consumer; subscribe: its own inboxes (it
 * connects with `inboxPrefix` {@link agentInboxPrefix}). Nothing of another cluster.
 */
export function agentPermissions(clusterId: string): NatsPermissions {
  const consumer = agentConsumerName(clusterId);
  return {
    pub: {
      allow: [`$JS.API.CONSUMER.MSG.NEXT.${WORK_STREAM}.${consumer}`, `$JS.ACK.${WORK_STREAM}.${consumer}.>`, `$JS.API.CONSUMER.INFO.${WORK_STREAM}.${consumer}`],
    },
    sub: { allow: [`${agentInboxPrefix(clusterId)}.>`] },
  };
}

/** The control plane's own user (the Durable Object's connection): publishes work, manages stream `WORK` and its consumers. */
export function controlPermissions(): NatsPermissions {
  const s = WORK_STREAM;
  return {
    pub: {
      allow: [
        "work.>",
        "$JS.API.INFO",
        ...["CREATE", "UPDATE", "INFO", "MSG.GET"].map((op) => `$JS.API.STREAM.${op}.${s}`),
        ...["CREATE", "DURABLE.CREATE", "INFO", "DELETE"].map((op) => `$JS.API.CONSUMER.${op}.${s}.>`),
        `$JS.API.CONSUMER.LIST.${s}`,
      ],
    },
    sub: { allow: ["_INBOX.>"] },
  };
}

/** The SYS user: pushes and looks up account JWTs (revocations), nothing else. */
export function sysPermissions(): NatsPermissions {
  return {
    pub: { allow: ["$SYS.REQ.CLAIMS.UPDATE", "$SYS.REQ.ACCOUNT.*.CLAIMS.UPDATE", "$SYS.REQ.ACCOUNT.*.CLAIMS.LOOKUP"] },
    sub: { allow: ["_INBOX.>"] },
  };
}
