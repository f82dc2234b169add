/**
 * @module
 * A step's image, as both executors get it when they run steps in containers: planned from the
 * project (refs known before anything is built, so the node's MLflow run can name its image),
 * then ensured — found where images are kept, or built once — while the node is `building`, with
 * the build's log in the node's MLflow run (`parallels/build.log`).
 */
import { EnvFileError, ImageSpecError } from "../../../../proto/images";
import type { MlflowClient } from "../../../../proto/mlflow";
import { isMLprojectError, loadProject, type Project } from "../../../../proto/mlproject";
import { BuildLogUpload } from "../../images/build-log";
import { type ImagePlan, type ImageSettings, planImages } from "../../images/plan";
import { BuildFailure, type EnsuredImage, type ImageService } from "../../images/service";
import type { AttemptReport } from "../types";
import { AttemptFailure, errMessage } from "./errors";
import { fsProjectFiles } from "./project";

/** The git source of a fetched project, for its image's tag (none for a folder read in place: its files' digest then). */
export function gitSourceOf(fetched: { git?: { url: string; subdirectory?: string }; gitCommit?: string }): { url: string; commit: string; subdirectory?: string } | undefined {
  if (!fetched.git || !fetched.gitCommit) return undefined;
  return { url: fetched.git.url, commit: fetched.gitCommit, ...(fetched.git.subdirectory ? { subdirectory: fetched.git.subdirectory } : {}) };
}

/** What an executor needs to run steps in images it builds. */
export interface StepImages {
  service: ImageService;
  settings: ImageSettings;
}

/** The images of the project in `dir` (at `git`'s commit when it was cloned there). A project whose env files are wrong fails the attempt. */
export async function planStepImage(images: StepImages, dir: string, git?: { url: string; commit: string; subdirectory?: string }): Promise<{ plan: ImagePlan; project: Project }> {
  try {
    const files = fsProjectFiles(dir);
    const project = await loadProject(files, { projectDir: dir });
    return { plan: await planImages({ dir, project, files, ...(git ? { git } : {}) }, images.settings), project };
  } catch (e) {
    if (e instanceof ImageSpecError || e instanceof EnvFileError || isMLprojectError(e)) throw new AttemptFailure(`the step's image: ${errMessage(e)}`, { cause: e });
    throw e;
  }
}

export interface EnsureStepImageInput {
  images: StepImages;
  plan: ImagePlan;
  mlflow: MlflowClient;
  /** The node attempt's MLflow run: its `parallels/build.log` gets the log of every build it waits for. */
  nodeRunId: string;
  report: (event: AttemptReport) => void;
  warn?: (obj: object, msg: string) => void;
}

/**
 * The step's image, found or built. Reports `building` (with the image and since when) for each
 * image it waits for and `built` once all are there; a failed build fails the attempt with the
 * failing instruction and the end of the log.
 */
export async function ensureStepImage(i: EnsureStepImageInput): Promise<EnsuredImage> {
  let upload: BuildLogUpload | undefined;
  const log = () => (upload ??= new BuildLogUpload(i.mlflow, i.nodeRunId, 5_000, (e) => i.warn?.({ err: e }, "could not upload the build log yet")));
  try {
    const ensured = await i.images.service.ensure(i.plan, {
      mlflowRunId: i.nodeRunId,
      onBuilding: (step, since) => {
        log();
        i.report({ type: "building", imageRef: step.ref, message: `waiting for the image ${step.ref} — ${step.what} — building since ${new Date(since).toISOString()}` });
      },
      onLog: (text) => log().append(text),
    });
    if (upload) {
      await upload.close();
      i.report({ type: "built", imageRef: ensured.ref, message: `image ${ensured.ref} built` });
    }
    return ensured;
  } catch (e) {
    await upload?.close();
    if (e instanceof BuildFailure) throw new AttemptFailure(e.message, { cause: e });
    throw e;
  }
}
