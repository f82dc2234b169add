/**
 * The agent's Prometheus metrics (prom-client), on a registry of its own. Gauges whose truth
 * lives elsewhere (queue depth, running attempts, pull age) are read at scrape time.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";

export interface MetricSources {
  queueDepth(): number;
  runningAttempts(): number;
  /** Seconds since the last successful pull (Infinity before the first). */
  lastPullAgeSeconds(): number;
  natsConnected(): boolean;
}

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "parallels_agent_" });
  const sources: Partial<MetricSources> = {};
  const m = {
    registry,
    /** Wired by main once the parts exist. */
    sources,
    messagesReceived: new Counter({ name: "parallels_agent_messages_received_total", help: "Work messages pulled from NATS", labelNames: ["kind"], registers: [registry] }),
    messagesAcked: new Counter({
      name: "parallels_agent_messages_acked_total",
      help: "Work messages acked (work durably started, cancelled, or known stale)",
      labelNames: ["kind"],
      registers: [registry],
    }),
    messagesNaked: new Counter({
      name: "parallels_agent_messages_naked_total",
      help: "Work messages handed back to NATS for redelivery after a retryable failure",
      labelNames: ["kind"],
      registers: [registry],
    }),
    messagesTerminated: new Counter({
      name: "parallels_agent_messages_terminated_total",
      help: "Work messages terminated (never redelivered), e.g. unparseable",
      labelNames: ["reason"],
      registers: [registry],
    }),
    eventsSent: new Counter({ name: "parallels_agent_events_sent_total", help: "Events accepted by the control plane", registers: [registry] }),
    eventBatchesFailed: new Counter({ name: "parallels_agent_event_batches_failed_total", help: "Event batches that failed (retried unless dropped)", labelNames: ["reason"], registers: [registry] }),
    eventsDropped: new Counter({ name: "parallels_agent_events_dropped_total", help: "Events dropped: refused as foreign work (403) or invalid", labelNames: ["reason"], registers: [registry] }),
    heartbeatsFailed: new Counter({ name: "parallels_agent_heartbeats_failed_total", help: "Heartbeats that failed", registers: [registry] }),
    kubernetesRequests: new Counter({
      name: "parallels_agent_kubernetes_requests_total",
      help: "Requests of the Kubernetes executor to the API server, by verb (WATCH: a watch opened)",
      labelNames: ["verb"],
      registers: [registry],
    }),
    mlflowRequests: new Counter({
      name: "parallels_agent_mlflow_requests_total",
      help: "Requests of the executor to the MLflow tracking server, by endpoint (artifacts: the artifact proxy)",
      labelNames: ["endpoint"],
      registers: [registry],
    }),
  };
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  gauge("parallels_agent_event_queue_depth", "Events waiting to be sent", () => sources.queueDepth?.() ?? 0);
  gauge("parallels_agent_running_attempts", "Attempts the executor runs now", () => sources.runningAttempts?.() ?? 0);
  gauge("parallels_agent_last_pull_age_seconds", "Seconds since the last successful pull from NATS (-1: never)", () => {
    const age = sources.lastPullAgeSeconds?.() ?? Infinity;
    return Number.isFinite(age) ? age : -1;
  });
  gauge("parallels_agent_nats_connected", "1 when connected to NATS", () => (sources.natsConnected?.() ? 1 : 0));
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;
