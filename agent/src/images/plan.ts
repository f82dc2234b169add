/**
 * @module
 * What image a project's step runs in, and how to make it: the environment image (when the
 * project has a python_env or conda_env) and the project image, each with its content-addressed
 * reference, its generated Dockerfile and its build context (read lazily: only a build needs the
 * project's files). Pure apart from reading the project's folder.
 */
import { lstat, readdir, readFile, realpath, stat } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import { createHash } from "node:crypto";
import { type BaseImages, type ContextFile, contentTag, envImageRef, filesDigest, type ImageTarget, planEnvImage, planProjectImage, projectImageRef, type ProjectSource } from "../../../proto/images";
import type { Project, ProjectFiles } from "../../../proto/mlproject";
import type { TarEntry } from "./tar";

export interface ImageSettings {
  target: ImageTarget;
  bases: BaseImages;
}

/** One image to have: asked for in the registry, built when missing. */
export interface ImageStep {
  kind: "env" | "project";
  ref: string;
  dockerfile: string;
  /** Said in the node's message while it builds. */
  what: string;
  /** The build context (the Dockerfile included). */
  context(): Promise<TarEntry[]>;
}

export interface ImagePlan {
  /** The image the step runs in (the project image). */
  ref: string;
  /** In build order: the environment image (if any), then the project image. */
  steps: ImageStep[];
  notes: string[];
}

/** A project file, read from its folder. */
interface ProjectFile {
  path: string;
  data: Uint8Array;
  executable: boolean;
}

/**
 * The project's files as a build context takes them: everything but `.git`; symlinks followed
 * when they stay inside the project (MLflow's docker backend copies the folder with
 * `shutil.copytree`, which follows them), others left out.
 */
export async function readProjectFiles(dir: string): Promise<ProjectFile[]> {
  const root = await realpath(dir);
  const out: ProjectFile[] = [];
  const walk = async (rel: string) => {
    for (const name of (await readdir(join(root, rel))).sort()) {
      if (rel === "" && name === ".git") continue;
      const path = rel ? `${rel}/${name}` : name;
      const abs = join(root, path);
      const l = await lstat(abs);
      if (l.isDirectory()) await walk(path);
      else if (l.isFile()) out.push({ path, data: await readFile(abs), executable: (l.mode & 0o111) !== 0 });
      else if (l.isSymbolicLink()) {
        const target = await realpath(abs).catch(() => null);
        if (!target || !(target === root || target.startsWith(root + sep))) continue;
        const s = await stat(target);
        if (s.isFile()) out.push({ path, data: await readFile(target), executable: (s.mode & 0o111) !== 0 });
      }
    }
  };
  await walk("");
  return out;
}

export async function digestOfFiles(files: readonly ProjectFile[]): Promise<string> {
  return filesDigest(files.map((f) => ({ path: f.path, executable: f.executable, sha256: createHash("sha256").update(f.data).digest("hex") })));
}

const enc = new TextEncoder();
const fromContext = (f: ContextFile): TarEntry => ({ path: f.path, data: enc.encode(f.text), mode: f.mode ?? 0o644 });
const fromProject = (prefix: string, f: ProjectFile): TarEntry => ({ path: `${prefix}/${f.path}`, data: f.data, mode: f.executable ? 0o755 : 0o644 });

export interface PlanImagesInput {
  /** The project's folder (its files go into the project image). */
  dir: string;
  project: Project;
  files: ProjectFiles;
  /** The project's version: the commit it was cloned at; absent for a folder read in place (then the digest of its files). */
  git?: { url: string; commit: string; subdirectory?: string };
}

/** The images a project runs in (refs computed now; contexts read when a build asks). */
export async function planImages(input: PlanImagesInput, settings: ImageSettings): Promise<ImagePlan> {
  const { project, dir } = input;
  let cached: ProjectFile[] | undefined;
  const projectFiles = async () => (cached ??= await readProjectFiles(dir));
  let digest: string | undefined;
  const projectDigest = async () => (digest ??= await digestOfFiles(await projectFiles()));
  const source: ProjectSource = input.git
    ? { git: input.git.url, commit: input.git.commit, ...(input.git.subdirectory ? { subdirectory: input.git.subdirectory } : {}) }
    : { digest: await projectDigest() };
  const steps: ImageStep[] = [];
  const notes: string[] = [];

  let from: string;
  if (project.envType === "docker_env") {
    from = project.dockerEnv!.image;
  } else {
    // A python_env that installs from the project's own folder needs its digest first (cheap to ask twice: cached).
    let env = await planEnvImage(project, input.files, settings.bases).catch(async (e: unknown) => {
      if (e instanceof Error && /installs from the project's own folder; the environment image then needs/.test(e.message)) return null;
      throw e;
    });
    if (env === null) env = await planEnvImage(project, input.files, settings.bases, { projectDigest: await projectDigest() });
    if (!env) throw new Error(`no environment image for a ${project.envType} project`);
    notes.push(...env.notes);
    const plan = env;
    const ref = envImageRef(settings.target, await contentTag(plan.identity));
    steps.push({
      kind: "env",
      ref,
      dockerfile: plan.dockerfile,
      what: plan.kind === "python_env" ? `the Python ${plan.python} environment (${plan.base})` : `the conda environment (${plan.base})`,
      context: async () => [
        { path: "Dockerfile", data: enc.encode(plan.dockerfile) },
        ...plan.files.map(fromContext),
        ...(plan.needsProject ? (await projectFiles()).map((f) => fromProject("env", f)) : []),
      ],
    });
    from = ref;
  }
  const image = planProjectImage(from, source, { dockerEnv: project.dockerEnv, name: project.name });
  const ref = projectImageRef(settings.target, project.name, await contentTag(image.identity));
  steps.push({
    kind: "project",
    ref,
    dockerfile: image.dockerfile,
    what: `the project image (${project.name ?? "project"} on ${from})`,
    context: async () => [
      { path: "Dockerfile", data: enc.encode(image.dockerfile) },
      ...image.files.map(fromContext),
      { path: "project" },
      ...(await projectFiles()).map((f) => fromProject("project", f)),
    ],
  });
  return { ref, steps, notes };
}

/** For messages: a path relative to a root. */
export const rel = (root: string, p: string) => relative(root, p) || ".";
