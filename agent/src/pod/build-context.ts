/**
 * `parallels-agent pod build-context`: the init container of an image build Job. Downloads the
 * build context the agent stored as an MLflow artifact (a gzipped tarball) and unpacks it where
 * the builder reads it; paths leading out of that folder are refused.
 */
import { z } from "zod";
import type { MlflowClient } from "../../../proto/mlflow";
import { BUILD_CONTEXT_ENV } from "../executor/kubernetes/build-job";
import { extractTo, untarGz } from "../images/tar";

export const BuildContextSchema = z.object({ trackingUri: z.string(), runId: z.string(), path: z.string(), dir: z.string() });
export type BuildContext = z.infer<typeof BuildContextSchema>;

export function buildContextOf(env: NodeJS.ProcessEnv): BuildContext {
  const raw = env[BUILD_CONTEXT_ENV];
  if (!raw) throw new Error(`${BUILD_CONTEXT_ENV} is not set: this program runs in an image build pod made by the agent`);
  const parsed = BuildContextSchema.safeParse(JSON.parse(raw));
  if (!parsed.success) throw new Error(`${BUILD_CONTEXT_ENV} is not valid: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  return parsed.data;
}

/** Fetches and unpacks the context; returns how many entries it had. */
export async function fetchBuildContext(mlflow: MlflowClient, c: BuildContext): Promise<number> {
  const entries = untarGz(await mlflow.downloadArtifact(c.runId, c.path));
  await extractTo(entries, c.dir);
  return entries.length;
}
