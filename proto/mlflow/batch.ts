/**
 * @module
 * Splitting `runs/log-batch` payloads so that every request stays inside MLflow's limits
 * (mlflow/utils/validation.py): at most 100 params, 100 tags, 1000 metrics and 1000 entities in
 * all per request, at most 1 MB of JSON; param values up to 6000 characters, tag values up to 8000
 * (counted in Unicode code points, as Python's `len`). Pure functions, tested without a server.
 *
 * MLflow 3.17's own 1 MB check measures the parsed dict (`len(json)` = number of keys), so the
 * server accepts larger bodies; the byte limit is kept anyway for proxies and older servers.
 */
import { MlflowClientError } from "./errors";

/** MLflow's limits for `runs/log-batch` (MLflow 3.x). */
export interface MlflowLimits {
  maxParamsPerBatch: number;
  maxTagsPerBatch: number;
  maxMetricsPerBatch: number;
  maxEntitiesPerBatch: number;
  /** Size of one request body, in bytes of UTF-8. */
  maxRequestBytes: number;
  maxParamValueLength: number;
  maxTagValueLength: number;
  maxKeyLength: number;
}

export const MLFLOW_LIMITS: Readonly<MlflowLimits> = Object.freeze({
  maxParamsPerBatch: 100,
  maxTagsPerBatch: 100,
  maxMetricsPerBatch: 1000,
  maxEntitiesPerBatch: 1000,
  maxRequestBytes: 1_000_000,
  maxParamValueLength: 6000,
  maxTagValueLength: 8000,
  maxKeyLength: 250,
});

export type ParamValue = string | number | boolean;
/** Params or tags: a record, or key/value pairs (which may repeat a key). */
export type KeyValues = Record<string, ParamValue> | Iterable<readonly [string, ParamValue]> | { key: string; value: ParamValue }[];

export interface MetricInput {
  key: string;
  value: number;
  /** ms since epoch; default: the time of the call (fixed once, so a retried request is identical). */
  timestamp?: number;
  step?: number;
}

export interface WireKeyValue {
  key: string;
  value: string;
}
export interface WireMetric {
  key: string;
  /** Numbers, or "NaN" / "Infinity" / "-Infinity" (proto3 JSON for doubles JSON cannot hold). */
  value: number | string;
  timestamp: number;
  step: number;
}
export interface BatchChunk {
  params: WireKeyValue[];
  tags: WireKeyValue[];
  metrics: WireMetric[];
}

/** What to do with a value over MLflow's length limit. */
export type LongValuePolicy = "truncate" | "error";

function pairsOf(kv: KeyValues | undefined): [string, string][] {
  if (kv === undefined) return [];
  const out: [string, string][] = [];
  if (Array.isArray(kv)) {
    for (const item of kv as unknown[]) {
      if (Array.isArray(item)) out.push([String(item[0]), String(item[1])]);
      else {
        const { key, value } = item as { key: string; value: ParamValue };
        out.push([key, String(value)]);
      }
    }
  } else if (typeof (kv as Iterable<unknown>)[Symbol.iterator] === "function") {
    for (const [k, v] of kv as Iterable<readonly [string, ParamValue]>) out.push([k, String(v)]);
  } else {
    for (const [k, v] of Object.entries(kv as Record<string, ParamValue>)) out.push([k, String(v)]);
  }
  return out;
}

/** Length in Unicode code points (Python's `len` of a str). */
export function codePointLength(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** The first `max` code points of `s` (never splits a surrogate pair). */
export function truncateCodePoints(s: string, max: number): string {
  if (s.length <= max) return s; // UTF-16 length ≥ code points
  let n = 0;
  let end = 0;
  for (const ch of s) {
    if (n === max) break;
    n++;
    end += ch.length;
  }
  return s.slice(0, end);
}

function limitValue(kind: "Param" | "Tag", key: string, value: string, max: number, policy: LongValuePolicy): string {
  if (value.length <= max) return value;
  const len = codePointLength(value);
  if (len <= max) return value;
  if (policy === "truncate") return truncateCodePoints(value, max);
  throw new MlflowClientError("VALUE_TOO_LONG", `${kind} value of '${key}' has ${len} characters, over MLflow's limit of ${max}`);
}

/**
 * Params for log-batch: values stringified and length-limited; the same key twice with the same
 * value is sent once; the same key with different values is refused here (MLflow params are
 * write-once, and the server would refuse the whole request).
 */
export function normalizeParams(params: KeyValues | undefined, limits: MlflowLimits = MLFLOW_LIMITS, policy: LongValuePolicy = "truncate"): WireKeyValue[] {
  const seen = new Map<string, string>();
  for (const [key, raw] of pairsOf(params)) {
    const value = limitValue("Param", key, raw, limits.maxParamValueLength, policy);
    const prev = seen.get(key);
    if (prev === undefined) seen.set(key, value);
    else if (prev !== value) {
      throw new MlflowClientError("DUPLICATE_PARAM", `param '${key}' is given twice with different values ('${prev.slice(0, 100)}' and '${value.slice(0, 100)}'); MLflow params are write-once`);
    }
  }
  return [...seen].map(([key, value]) => ({ key, value }));
}

/** Tags for log-batch: values stringified and length-limited; for a repeated key the last wins. */
export function normalizeTags(tags: KeyValues | undefined, limits: MlflowLimits = MLFLOW_LIMITS, policy: LongValuePolicy = "truncate"): WireKeyValue[] {
  const seen = new Map<string, string>();
  for (const [key, raw] of pairsOf(tags)) {
    seen.delete(key); // keep the position of the last occurrence
    seen.set(key, limitValue("Tag", key, raw, limits.maxTagValueLength, policy));
  }
  return [...seen].map(([key, value]) => ({ key, value }));
}

export function normalizeMetrics(metrics: Iterable<MetricInput> | undefined, now: number): WireMetric[] {
  const out: WireMetric[] = [];
  for (const m of metrics ?? []) {
    if (typeof m.value !== "number") {
      throw new MlflowClientError("INVALID_ARGUMENT", `metric '${m.key}' must be a number, got ${typeof m.value}`);
    }
    const value = Number.isFinite(m.value) ? m.value : Number.isNaN(m.value) ? "NaN" : m.value > 0 ? "Infinity" : "-Infinity";
    out.push({ key: m.key, value, timestamp: Math.trunc(m.timestamp ?? now), step: Math.trunc(m.step ?? 0) });
  }
  return out;
}

const encoder = new TextEncoder();
function jsonBytes(v: unknown): number {
  return encoder.encode(JSON.stringify(v)).length;
}

/**
 * Pack params, tags and metrics into as few log-batch requests as the limits allow, in order
 * (params, then tags, then metrics). `runId` is only used to size the request envelope.
 */
export function chunkBatch(runId: string, entities: { params?: WireKeyValue[]; tags?: WireKeyValue[]; metrics?: WireMetric[] }, limits: MlflowLimits = MLFLOW_LIMITS): BatchChunk[] {
  const envelope = jsonBytes({ run_id: runId, metrics: [], params: [], tags: [] });
  const chunks: BatchChunk[] = [];
  let cur: BatchChunk = { params: [], tags: [], metrics: [] };
  let bytes = envelope;
  const count = () => cur.params.length + cur.tags.length + cur.metrics.length;
  const flush = () => {
    if (count() > 0) chunks.push(cur);
    cur = { params: [], tags: [], metrics: [] };
    bytes = envelope;
  };
  const add = (kind: keyof BatchChunk, item: WireKeyValue | WireMetric, max: number) => {
    const size = jsonBytes(item) + 1; // + separating comma
    if (envelope + size > limits.maxRequestBytes) {
      throw new MlflowClientError("VALUE_TOO_LONG", `'${item.key}' alone is larger than one MLflow request may be`);
    }
    if (cur[kind].length >= max || count() >= limits.maxEntitiesPerBatch || bytes + size > limits.maxRequestBytes) flush();
    (cur[kind] as (WireKeyValue | WireMetric)[]).push(item);
    bytes += size;
  };
  for (const p of entities.params ?? []) add("params", p, limits.maxParamsPerBatch);
  for (const t of entities.tags ?? []) add("tags", t, limits.maxTagsPerBatch);
  for (const m of entities.metrics ?? []) add("metrics", m, limits.maxMetricsPerBatch);
  flush();
  return chunks;
}
