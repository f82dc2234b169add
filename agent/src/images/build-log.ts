/**
 * @module
 * A build's log in the node's MLflow run (`parallels/build.log`): uploaded while the build runs
 * (every few seconds, the whole text so far: MLflow artifacts are files, not streams) and once
 * more at its end, so it can be read during the build and outlives the builder.
 */
import type { MlflowClient } from "../../../proto/mlflow";

export const BUILD_LOG_ARTIFACT = "parallels/build.log";

export class BuildLogUpload {
  private text = "";
  private dirty = false;
  private timer: ReturnType<typeof setInterval> | undefined;
  private uploading: Promise<void> = Promise.resolve();

  constructor(
    private readonly mlflow: MlflowClient,
    private readonly runId: string,
    everyMs = 5_000,
    private readonly onError: (e: unknown) => void = () => {},
  ) {
    this.timer = setInterval(() => void this.flush(), everyMs);
    this.timer.unref();
  }

  append(chunk: string): void {
    this.text += chunk;
    // Keep the end (where a failure is) when a build talks a lot.
    if (this.text.length > 8 * 1024 * 1024) this.text = `…\n${this.text.slice(-6 * 1024 * 1024)}`;
    this.dirty = true;
  }

  get content(): string {
    return this.text;
  }

  flush(): Promise<void> {
    if (!this.dirty) return this.uploading;
    this.dirty = false;
    const text = this.text;
    this.uploading = this.uploading
      .then(() => this.mlflow.uploadArtifact(this.runId, BUILD_LOG_ARTIFACT, text, "text/plain; charset=utf-8"))
      .catch((e: unknown) => {
        this.dirty = true;
        this.onError(e);
      });
    return this.uploading;
  }

  /** The last upload, then no more. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }
}
