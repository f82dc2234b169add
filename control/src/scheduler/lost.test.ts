import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Dag } from "../../../proto/dag";
import { ACTIVE_NODE_STATUSES, NODE_STATUSES, type RunStatus } from "../../../proto/status";
import { decide } from "./index";
import { decideLost, type LostCluster, type LostInput, type LostNode, type LostOutcome } from "./lost";

const MIN = 60_000;
const OFFLINE = 45_000;
const T0 = Date.UTC(2026, 0, 1);
const project = { uri: "examples/noop" };

const cluster = (id: string, lastHeartbeatAt: number | null, labels: Record<string, string> = { gpu: "true" }): LostCluster => ({ id, name: id, labels, lastHeartbeatAt, registeredAt: T0 - 60 * MIN });
const dagOf = (onClusterLost: Dag["onClusterLost"], cluster: Dag["nodes"][number]["cluster"] = { gpu: "true" }) =>
  ({ nodes: [{ id: "train", project, cluster }], ...(onClusterLost ? { onClusterLost } : {}) }) as unknown as Pick<Dag, "nodes" | "onClusterLost">;
const running = (clusterId: string, updatedAt = T0 - 30 * MIN, attempt = 1): LostNode => ({ nodeId: "train", status: "running", attempt, clusterId, updatedAt });

function input(over: Partial<LostInput>): LostInput {
  return {
    dag: dagOf({ policy: "retryElsewhere", grace: "10m" }),
    runStatus: "running",
    nodes: [running("a")],
    clusters: [cluster("a", T0 - 20 * MIN), cluster("b", T0 - 5_000)],
    now: T0,
    offlineAfterMs: OFFLINE,
    ...over,
  };
}

describe("decideLost", () => {
  it("retries elsewhere after the grace: on an online cluster matching the selector, not the lost one", () => {
    expect(decideLost(input({}))).toEqual([
      {
        nodeId: "train",
        attempt: 1,
        clusterId: "a",
        since: T0 - 20 * MIN,
        action: { kind: "retry", to: "b", toName: "b" },
        message: `cluster "a" lost (no heartbeat since ${new Date(T0 - 20 * MIN).toISOString()}; onClusterLost retryElsewhere after 10m): attempt 1 abandoned; retried on cluster "b" as attempt 2`,
      },
    ]);
  });

  it("does nothing before the grace, counting from the later of the last heartbeat and the node's last change", () => {
    expect(decideLost(input({ clusters: [cluster("a", T0 - 9 * MIN), cluster("b", T0)] }))).toEqual([]);
    // Silent for 20 minutes, but the attempt was sent 5 minutes ago: it gets its whole grace.
    expect(decideLost(input({ nodes: [running("a", T0 - 5 * MIN)] }))).toEqual([]);
    // A grace shorter than "offline" waits until the cluster is offline.
    const short = dagOf({ policy: "fail", grace: "1s" });
    expect(decideLost(input({ dag: short, clusters: [cluster("a", T0 - 30_000)], nodes: [running("a", T0 - MIN)] }))).toEqual([]);
    expect(decideLost(input({ dag: short, clusters: [cluster("a", T0 - 50_000)], nodes: [running("a", T0 - MIN)] }))).toHaveLength(1);
  });

  it("fails with a message naming the cluster; the default is fail after 10 minutes", () => {
    for (const dag of [dagOf({ policy: "fail", grace: "10m" }), dagOf(undefined)]) {
      const [out] = decideLost(input({ dag }));
      expect(out!.action).toEqual({ kind: "fail" });
      expect(out!.message).toMatch(/^cluster "a" lost \(no heartbeat since .*; onClusterLost fail after 10m\): attempt 1 abandoned$/);
    }
    expect(decideLost(input({ dag: dagOf(undefined), clusters: [cluster("a", T0 - 9 * MIN)] }))).toEqual([]);
  });

  it("retryElsewhere moves a pending node placed on the lost cluster by its selector; nothing else moves one", () => {
    const pending = { ...running("a"), status: "pending" as const, attempt: 0 };
    expect(decideLost(input({ nodes: [pending] }))).toEqual([
      {
        nodeId: "train",
        attempt: 0,
        clusterId: "a",
        since: T0 - 20 * MIN,
        action: { kind: "move", to: "b", toName: "b" },
        message: `cluster "a" lost (no heartbeat since ${new Date(T0 - 20 * MIN).toISOString()}): placed on cluster "b"`,
      },
    ]);
    expect(decideLost(input({ nodes: [pending], dag: dagOf({ policy: "fail" }) }))).toEqual([]);
    expect(decideLost(input({ nodes: [pending], dag: dagOf({ policy: "retryElsewhere" }, "a") }))).toEqual([]);
    expect(decideLost(input({ nodes: [pending], clusters: [cluster("a", T0 - 20 * MIN)] }))).toEqual([]);
  });

  it("with placement's view of the clusters, the retry goes where submit would place it: most free capacity, GPUs only where allocatable", () => {
    const dag = { nodes: [{ id: "train", project, cluster: { gpu: "true" }, resources: { gpu: 1 } }], onClusterLost: { policy: "retryElsewhere", grace: "10m" } } as unknown as LostInput["dag"];
    const clusters = [cluster("a", T0 - 20 * MIN), cluster("b", T0 - 5_000), cluster("c", T0 - 5_000), cluster("d", T0 - 5_000)];
    const view = (id: string, gpu: number, runningJobs: number, status: "online" | "offline" = "online") => ({
      id,
      name: id,
      labels: { gpu: "true" },
      status,
      allocatable: { cpu: "16", memory: "64Gi", gpu },
      runningJobs,
    });
    // b is busy, c is free, d has no GPUs: by name alone b would be taken.
    const placement = [view("a", 8, 0, "offline"), view("b", 4, 3), view("c", 4, 0), view("d", 0, 0)];
    expect(decideLost(input({ dag, clusters }))[0]!.action).toEqual({ kind: "retry", to: "b", toName: "b" });
    expect(decideLost(input({ dag, clusters, placement }))[0]!.action).toEqual({ kind: "retry", to: "c", toName: "c" });
    // Nothing with GPUs left but the lost cluster: the node fails, saying so.
    const [none] = decideLost(input({ dag, clusters, placement: [view("a", 8, 0, "offline"), view("d", 0, 0)] }));
    expect(none!.action).toEqual({ kind: "fail" });
    expect(none!.message).toMatch(/no other online cluster has the labels/);
  });

  it("wait: never does anything", () => {
    expect(decideLost(input({ dag: dagOf({ policy: "wait", grace: "1m" }), clusters: [cluster("a", null), cluster("b", T0)], now: T0 + 1000 * MIN }))).toEqual([]);
  });

  it("retryElsewhere fails, saying why, when there is nowhere else", () => {
    const named = decideLost(input({ dag: dagOf({ policy: "retryElsewhere" }, "a") }));
    expect(named.map((o) => [o.action.kind, o.message.split("; ").at(-1)])).toEqual([["fail", 'nowhere else to retry: the node names cluster "a"']]);
    const none = decideLost(input({ dag: { nodes: [{ id: "train", project }], onClusterLost: { policy: "retryElsewhere" } } as Pick<Dag, "nodes" | "onClusterLost"> }));
    expect(none[0]!.message).toMatch(/nowhere else to retry: the node names no cluster/);
    // b is offline too, c is online but lacks the label.
    const offline = decideLost(input({ clusters: [cluster("a", T0 - 20 * MIN), cluster("b", T0 - 2 * MIN), cluster("c", T0, { gpu: "false" })] }));
    expect(offline[0]!.message).toMatch(/no other online cluster has the labels \{"gpu":"true"\}$/);
    // Not while the run is being cancelled: the attempt is lost, nothing new starts.
    expect(decideLost(input({ runStatus: "cancelling" }))[0]).toMatchObject({ action: { kind: "fail" }, message: expect.stringMatching(/not retried: the run is cancelling$/) });
  });

  it("leaves nodes that are not active, or on a cluster heard from, alone", () => {
    for (const status of NODE_STATUSES.filter((s) => !(ACTIVE_NODE_STATUSES as readonly string[]).includes(s) && s !== "pending")) {
      expect(decideLost(input({ nodes: [{ ...running("a"), status }] }))).toEqual([]);
    }
    expect(decideLost(input({ nodes: [running("b")] }))).toEqual([]);
  });
});

describe("decideLost: properties", () => {
  const ids = ["a", "b", "c", "d"];
  const arb = fc.record({
    policy: fc.constantFrom("wait", "retryElsewhere", "fail", undefined),
    graceMin: fc.integer({ min: 1, max: 30 }),
    selector: fc.constantFrom<Dag["nodes"][number]["cluster"]>({ gpu: "true" }, "a", undefined, { zone: "x" }),
    runStatus: fc.constantFrom<RunStatus>("running", "cancelling", "failed"),
    clusters: fc.tuple(...ids.map((id) => fc.record({ id: fc.constant(id), silentMs: fc.option(fc.integer({ min: 0, max: 60 * MIN }), { nil: null }), gpu: fc.boolean(), zone: fc.boolean() }))),
    nodes: fc.array(fc.record({ status: fc.constantFrom(...NODE_STATUSES), cluster: fc.constantFrom(...ids), ageMs: fc.integer({ min: 0, max: 60 * MIN }), attempt: fc.integer({ min: 1, max: 4 }) }), {
      minLength: 1,
      maxLength: 4,
    }),
  });
  const build = (c: any): LostInput => {
    const clusters = c.clusters.map((x: any) => ({ ...cluster(x.id, x.silentMs === null ? null : T0 - x.silentMs, { ...(x.gpu ? { gpu: "true" } : {}), ...(x.zone ? { zone: "x" } : {}) }) }));
    const nodes: Dag["nodes"] = c.nodes.map((_: unknown, i: number) => ({ id: `n${i}`, project, ...(c.selector !== undefined ? { cluster: c.selector } : {}) }));
    return {
      dag: { nodes, ...(c.policy ? { onClusterLost: { policy: c.policy, grace: `${c.graceMin}m` } } : {}) } as Pick<Dag, "nodes" | "onClusterLost">,
      runStatus: c.runStatus,
      nodes: c.nodes.map((n: any, i: number) => ({ nodeId: `n${i}`, status: n.status, attempt: n.attempt, clusterId: n.cluster, updatedAt: T0 - n.ageMs })),
      clusters,
      now: T0,
      offlineAfterMs: OFFLINE,
    };
  };
  /** The outcome as the control plane writes it: failed, or dispatched on the new cluster now. */
  const apply = (inp: LostInput, outs: LostOutcome[]): LostInput => ({
    ...inp,
    nodes: inp.nodes.map((n) => {
      const o = outs.find((x) => x.nodeId === n.nodeId);
      if (!o) return n;
      if (o.action.kind === "move") return { ...n, clusterId: o.action.to };
      return o.action.kind === "retry" ? { ...n, status: "dispatched", attempt: n.attempt + 1, clusterId: o.action.to, updatedAt: inp.now } : { ...n, status: "failed" };
    }),
  });

  it("never retries on the lost cluster or an offline or non-matching one; never touches a node on a healthy cluster; wait does nothing; applying twice changes nothing more", () => {
    fc.assert(
      fc.property(arb, (c) => {
        const inp = build(c);
        const outs = decideLost(inp);
        const byId = new Map(inp.clusters.map((x) => [x.id, x]));
        const online = (id: string) => {
          const h = byId.get(id)!.lastHeartbeatAt;
          return h !== null && T0 - h <= OFFLINE;
        };
        if (c.policy === "wait") expect(outs).toEqual([]);
        for (const o of outs) {
          const node = inp.nodes.find((n) => n.nodeId === o.nodeId)!;
          if (o.action.kind === "move") expect(node.status).toBe("pending");
          else expect(ACTIVE_NODE_STATUSES as readonly string[]).toContain(node.status);
          expect(online(node.clusterId!)).toBe(false);
          expect(o.message).toContain(`cluster "${node.clusterId}" lost`);
          if (o.action.kind !== "fail") {
            expect(o.action.to).not.toBe(node.clusterId);
            expect(online(o.action.to)).toBe(true);
            expect(typeof c.selector).toBe("object");
            for (const [k, v] of Object.entries(c.selector as Record<string, string>)) expect(byId.get(o.action.to)!.labels[k]).toBe(v);
            expect(c.runStatus).toBe("running");
          }
        }
        for (const n of inp.nodes) if (online(n.clusterId!)) expect(outs.find((o) => o.nodeId === n.nodeId)).toBeUndefined();
        expect(decideLost(apply(inp, outs))).toEqual([]);
      }),
      { numRuns: 500 },
    );
  });
});

describe("decide: lost attempts do not count against retries", () => {
  const dag = { name: "d", failurePolicy: "failFast", nodes: [{ id: "train", project, retries: 0 }] } as unknown as Dag;
  it("a node whose only attempt was lost is dispatched again, once more failing is final", () => {
    expect(decide({ dag, runStatus: "running", cancelRequested: false, nodes: [{ nodeId: "train", status: "failed", attempt: 1, lost: 1 }] }).dispatch).toEqual([{ nodeId: "train", attempt: 2 }]);
    expect(decide({ dag, runStatus: "running", cancelRequested: false, nodes: [{ nodeId: "train", status: "failed", attempt: 2, lost: 1 }] }).runStatus).toBe("failed");
    expect(decide({ dag, runStatus: "running", cancelRequested: false, nodes: [{ nodeId: "train", status: "failed", attempt: 1 }] }).runStatus).toBe("failed");
  });
});
