/**
 * @module
 * The MLflow REST answers this client reads, as zod schemas of their snake_case JSON, and
 * {@link parseResponse}, which refuses an answer that does not fit with an error naming the
 * endpoint and the path of each problem. Objects accept fields we do not read (servers add them);
 * what we read must have the type we read it as.
 */
import { z } from "zod";
import { MlflowClientError } from "./errors";
import { RUN_STATUSES } from "./types";

/** int64 fields come as JSON numbers from MLflow, as strings of digits from stock proto3 JSON. */
const Int64 = z.union([z.number(), z.string().regex(/^-?\d+$/, "expected an integer")]);
/** Doubles: proto3 JSON writes NaN and the infinities as strings (and may quote any number). */
const Double = z.union([z.number(), z.string().regex(/^(NaN|-?Infinity|-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)$/, "expected a number")]);

export const RawKeyValue = z.object({ key: z.string(), value: z.string().optional() });
export type RawKeyValue = z.infer<typeof RawKeyValue>;

export const RawMetric = z.object({ key: z.string(), value: Double, timestamp: Int64, step: Int64.optional() });
export type RawMetric = z.infer<typeof RawMetric>;

export const RawExperiment = z.object({
  experiment_id: z.string(),
  name: z.string(),
  artifact_location: z.string().optional(),
  lifecycle_stage: z.string().optional(),
  creation_time: Int64.optional(),
  last_update_time: Int64.optional(),
  tags: z.array(RawKeyValue).optional(),
});
export type RawExperiment = z.infer<typeof RawExperiment>;

export const RawRunInfo = z
  .object({
    run_id: z.string().optional(),
    /** The id's name before MLflow 1.x; still sent by some servers. */
    run_uuid: z.string().optional(),
    run_name: z.string().optional(),
    experiment_id: z.string(),
    user_id: z.string().optional(),
    status: z.enum(RUN_STATUSES).optional(),
    start_time: Int64.optional(),
    end_time: Int64.optional(),
    artifact_uri: z.string().optional(),
    lifecycle_stage: z.string().optional(),
  })
  .refine((i) => i.run_id !== undefined || i.run_uuid !== undefined, { message: "a run info needs run_id (or run_uuid)", path: ["run_id"] });
export type RawRunInfo = z.infer<typeof RawRunInfo>;

export const RawRun = z.object({
  info: RawRunInfo,
  data: z.object({ metrics: z.array(RawMetric).optional(), params: z.array(RawKeyValue).optional(), tags: z.array(RawKeyValue).optional() }).optional(),
});
export type RawRun = z.infer<typeof RawRun>;

export const RawFileInfo = z.object({ path: z.string(), is_dir: z.boolean().optional(), file_size: Int64.optional() });
export type RawFileInfo = z.infer<typeof RawFileInfo>;

/** The answer of each endpoint whose body the client reads (path below `/api/2.0/mlflow/`, or the artifact proxy). */
export const MlflowResponses = {
  /** `experiments/get`, `experiments/get-by-name` */
  experiment: z.object({ experiment: RawExperiment }),
  /** `experiments/create` */
  experimentCreated: z.object({ experiment_id: z.string() }),
  /** `runs/get`, `runs/create` */
  run: z.object({ run: RawRun }),
  /** `runs/update` */
  runUpdated: z.object({ run_info: RawRunInfo }),
  /** `runs/search` (empty pages omit `runs`) */
  runsPage: z.object({ runs: z.array(RawRun).optional(), next_page_token: z.string().optional() }),
  /** `metrics/get-history` */
  metricHistory: z.object({ metrics: z.array(RawMetric).optional(), next_page_token: z.string().optional() }),
  /** the artifact proxy's listing (`/api/2.0/mlflow-artifacts/artifacts?path=`) */
  artifactList: z.object({ files: z.array(RawFileInfo).optional() }),
} as const;

/** `runs[3].info.status` from zod's path. */
function pathText(path: readonly PropertyKey[]): string {
  let out = "";
  for (const p of path) out += typeof p === "number" ? `[${p}]` : `${out ? "." : ""}${String(p)}`;
  return out || "(body)";
}

/**
 * The answer of `method endpoint` read with `schema`; an answer that does not fit is a
 * `BAD_RESPONSE` client error naming the endpoint and, for each problem (at most 5), its path.
 */
export function parseResponse<S extends z.ZodType>(schema: S, body: unknown, method: string, endpoint: string): z.infer<S> {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.slice(0, 5).map((i) => `${pathText(i.path)}: ${i.message}`);
  const more = parsed.error.issues.length > 5 ? ` (and ${parsed.error.issues.length - 5} more)` : "";
  throw new MlflowClientError("BAD_RESPONSE", `MLflow ${method} ${endpoint} answered with an unexpected body: ${problems.join("; ")}${more}`);
}
