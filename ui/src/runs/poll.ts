/**
 * Live views of a run: `GET /v1/runs/{id}` (and a node's detail) polled with `If-None-Match`, so
 * while nothing changed the control plane answers 304 without a body (its ETag middleware), and
 * the view re-renders only when something did. Polling stops once the run has ended.
 */
import { useEffect, useState } from "react";
import type { z } from "zod";
import { NodeRunDetail, RunView } from "../../../proto/api";
import { isTerminalRun } from "../../../proto/status";
import { apiBase, useSession } from "../api/session";

const INTERVAL_MS = 1000;

export interface Polled<T> {
  value: T | undefined;
  error: string | null;
  /** Answers that were 304 (nothing changed), for the curious and the tests. */
  unchanged: number;
}

/** Polls one JSON resource with its ETag until `done(value)`. */
function usePolled<T>(path: string | null, schema: z.ZodType<T>, done: (value: T) => boolean, refresh: number): Polled<T> {
  const token = useSession((s) => s.session?.token);
  const [state, setState] = useState<Polled<T>>({ value: undefined, error: null, unchanged: 0 });
  // biome-ignore lint/correctness/useExhaustiveDependencies: `schema` and `done` are module-level
  useEffect(() => {
    if (!path || !token) return;
    let etag: string | null = null;
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const controller = new AbortController();
    const tick = async () => {
      try {
        const res = await fetch(apiBase() + path, {
          headers: { authorization: `Bearer ${token}`, ...(etag ? { "if-none-match": etag } : {}) },
          cache: "no-store",
          signal: controller.signal,
        });
        if (res.status === 304) setState((s) => ({ ...s, error: null, unchanged: s.unchanged + 1 }));
        else if (res.ok) {
          etag = res.headers.get("etag");
          const value = schema.parse(await res.json());
          setState((s) => ({ ...s, value, error: null }));
          if (done(value)) stopped = true;
        } else {
          const body = (await res.json().catch(() => null)) as { error?: { message?: string } } | null;
          setState((s) => ({ ...s, error: body?.error?.message ?? `HTTP ${res.status}` }));
          if (res.status === 404 || res.status === 401) stopped = true;
        }
      } catch (e) {
        if (controller.signal.aborted) return;
        // A dropped connection (the control plane restarting): keep polling, say so meanwhile.
        setState((s) => ({ ...s, error: `no answer from the control plane: ${(e as Error).message}` }));
      }
      if (!stopped && !controller.signal.aborted) timer = setTimeout(tick, INTERVAL_MS);
    };
    void tick();
    return () => {
      controller.abort();
      clearTimeout(timer);
    };
  }, [path, token, refresh]);
  return state;
}

export type Run = z.output<typeof RunView>;
export type NodeDetail = z.output<typeof NodeRunDetail>;

/** The run, live until it ends. `refresh` (a counter) starts polling again, e.g. after a cancel. */
export const useLiveRun = (id: string, refresh = 0) => usePolled(`/v1/runs/${encodeURIComponent(id)}`, RunView, (r) => isTerminalRun(r.status), refresh);

/** A node's detail (which partitions failed, and why), live while the run is. */
export const useLiveNode = (runId: string, nodeId: string | null, runEnded: boolean) =>
  usePolled(nodeId ? `/v1/runs/${encodeURIComponent(runId)}/nodes/${encodeURIComponent(nodeId)}` : null, NodeRunDetail, () => runEnded, runEnded ? 1 : 0);
