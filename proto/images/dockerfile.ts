/**
 * @module
 * The Dockerfiles an MLproject's step runs in, generated from what the MLproject engine parses —
 * users never write one. Two images per project:
 *
 * - the **environment image**, defined only by the environment (base image, env files, this
 *   recipe's version) and shared by every project and run with the same environment:
 *   - `python_env` (also a project without env file, as MLflow runs it with virtualenv): the
 *     declared Python's slim base image, a virtualenv at {@link ENV_DIR}, `build_dependencies`
 *     then `dependencies` installed with `pip install -r`, in that order and from the project's
 *     folder (so `-r requirements.txt` names the project's file), as MLflow's virtualenv env
 *     manager does;
 *   - `conda_env`: micromamba creating {@link ENV_DIR} from the environment file, as MLflow's
 *     conda env manager does with `conda env create`;
 * - the **project image**: the environment image (or, for `docker_env`, the user's image as it
 *   is) with the project's files at {@link PROJECT_DIR}, where MLflow's docker backend puts them,
 *   as the working directory.
 *
 * Every image runs as the non-root user {@link IMAGE_UID} with a home of its own. Downloads during
 * the build trust an extra CA bundle (a TLS-inspecting proxy on-premise) when the build gets the
 * secret {@link CA_SECRET_ID} (`RUN --mount=type=secret`: BuildKit, buildah and the Kaniko fork all
 * mount it at /run/secrets/<id> for that one step, so it never lands in a layer). Base images come
 * from {@link BaseImages}: air-gapped sites point them at their mirror.
 *
 * Runtime-free and pure (file reads are injected through `ProjectFiles`).
 */
import { EnvFileError } from "../mlproject/errors";
import { condaToPythonEnv, parsePythonEnv } from "../mlproject/env";
import type { DockerEnv, Project, ProjectFiles } from "../mlproject/load";
import { loadYaml } from "../mlproject/yaml11";
import { isPyDict } from "../mlproject/pytypes";
import { canonicalRequirements, namesLocalPath, referencedFile, requirementLines } from "./requirements";

/** Version of the recipe below: part of every image's tag, so a change of recipe builds anew. */
export const RECIPE_VERSION = 1;
/** The user every generated image runs as (the work pods' user too). */
export const IMAGE_UID = 10001;
/** Where MLflow's docker backend puts the project (`_MLFLOW_DOCKER_WORKDIR_PATH`). */
export const PROJECT_DIR = "/mlflow/projects/code/";
/** The environment's prefix: the virtualenv, or the conda environment. */
export const ENV_DIR = "/opt/mlflow-env";
/** The image user's home. */
export const HOME_DIR = "/home/mlflow";
/** The build secret holding the extra CA bundle. */
export const CA_SECRET_ID = "parallels-ca";
/** Where the env files go in an environment image (their project-relative paths below it). */
const SPEC_DIR = "/opt/mlflow-env-spec";
/** Names of the files the generator adds beside the project's env files. */
export const GENERATED = Object.freeze({ buildDependencies: "parallels.build-dependencies.txt", dependencies: "parallels.dependencies.txt", caScript: "parallels-ca.sh" } as const);

/** Where base images come from, and how a declared Python version names one. */
export interface BaseImages {
  /** Registry (and path prefix) of the base images: `docker.io`, or a site's mirror such as `registry.corp/mirror`. */
  registry: string;
  /** Repository of the Python bases under {@link registry}. */
  pythonRepository: string;
  /** Tag of a Python base: `{python}` is the declared version as written (`3.10`, `3.8.13`), `{minor}` its major.minor. */
  pythonTag: string;
  /** Tags for particular declared versions (e.g. `{"3.8": "3.8.18-slim-bookworm"}`), before {@link pythonTag}. */
  pythonTags?: Readonly<Record<string, string>>;
  /** The micromamba image for conda environments (repository:tag under {@link registry}). */
  micromamba: string;
  /** The Python of a python_env that names none (MLflow: the launcher's own version). */
  defaultPython: string;
}

export const DEFAULT_BASE_IMAGES: BaseImages = Object.freeze({
  registry: "docker.io",
  pythonRepository: "library/python",
  pythonTag: "{python}-slim",
  micromamba: "mambaorg/micromamba:2.0.5",
  defaultPython: "3.11",
});

/** A problem with what defines an image (its env files), said so the user can fix it. */
export class ImageSpecError extends Error {
  override name = "ImageSpecError";
}

const PYTHON_VERSION = /^\d+(\.\d+){0,2}$/;

/** The base image of a Python version. */
export function pythonBase(version: string, bases: BaseImages): string {
  if (!PYTHON_VERSION.test(version)) throw new ImageSpecError(`python version ${JSON.stringify(version)}: expected a version such as 3.11 or 3.10.12`);
  const minor = version.split(".").slice(0, 2).join(".");
  const tag = bases.pythonTags?.[version] ?? bases.pythonTags?.[minor] ?? bases.pythonTag.replaceAll("{python}", version).replaceAll("{minor}", minor);
  return `${trimSlashes(bases.registry)}/${trimSlashes(bases.pythonRepository)}:${tag}`;
}

const trimSlashes = (s: string) => s.replace(/^\/+|\/+$/g, "");

/** A file of a build context, by its path in the context. */
export interface ContextFile {
  path: string;
  text: string;
  /** Mode bits (default 0o644). */
  mode?: number;
}

export interface EnvImagePlan {
  kind: "python_env" | "conda_env";
  base: string;
  /** The declared (or default) Python of a python_env; null for conda. */
  python: string | null;
  /** What defines the image: its tag is a hash of this (see `contentTag`). */
  identity: Readonly<Record<string, unknown>>;
  dockerfile: string;
  /** The context besides the Dockerfile: `env/…`. */
  files: ContextFile[];
  /**
   * The environment installs from the project's own folder (`-e .`, `./pkg`): the context then
   * needs the project's files at `env/`, and the tag their digest (`identity.project`).
   */
  needsProject: boolean;
  /** Said to the user (e.g. the conda dependencies MLflow would warn about). */
  notes: string[];
}

/** A project's env files, read as pip or conda would, for its environment image. */
export async function planEnvImage(project: Project, files: ProjectFiles, bases: BaseImages, opts: { projectDigest?: string } = {}): Promise<EnvImagePlan | null> {
  if (project.envType === "docker_env" || project.envType === null) return null;
  if (project.envType === "conda_env") return planConda(project, files, bases);
  return planPythonEnv(project, files, bases, opts);
}

/** The env file's path relative to the project (the engine joins it with `projectDir`). */
function envFilePath(project: Project): string | null {
  const p = project.envConfigPath;
  if (p === null) return null;
  return p.replace(/^\.\//, "");
}

/** `a/b/../c` → `a/c`; refuses paths that leave the project. */
function normalizeRelative(path: string, from: string): string {
  if (path.startsWith("/")) throw new ImageSpecError(`${from}: ${path} is an absolute path; an environment can only use files of the project`);
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length === 0) throw new ImageSpecError(`${from}: ${path} leads outside the project`);
      out.pop();
    } else out.push(part);
  }
  return out.join("/");
}

const dirOf = (p: string) => (p.includes("/") ? p.slice(0, p.lastIndexOf("/")) : "");

/**
 * The files `-r`/`-c` lines name, read recursively (paths relative to the file that names them,
 * as pip reads nested files; the lists of the env file are relative to the project, as MLflow
 * writes them into a temporary requirements file in the project's folder). Each file's lines are
 * canonical in the context too: the image is a function of its tag.
 */
async function referencedFiles(lines: readonly string[], baseDir: string, files: ProjectFiles, from: string, out: Map<string, string[]>): Promise<boolean> {
  let local = false;
  for (const line of lines) {
    if (namesLocalPath(line)) local = true;
    const ref = referencedFile(line);
    if (!ref) continue;
    const path = normalizeRelative(baseDir ? `${baseDir}/${ref.path}` : ref.path, from);
    if (out.has(path)) continue;
    const text = await files.read(path);
    if (text === null) throw new ImageSpecError(`${from}: ${line} names ${path}, which the project does not have`);
    const canonical = canonicalRequirements(requirementLines(text));
    out.set(path, canonical);
    if (await referencedFiles(canonical, dirOf(path), files, path, out)) local = true;
  }
  return local;
}

async function planPythonEnv(project: Project, files: ProjectFiles, bases: BaseImages, opts: { projectDigest?: string }): Promise<EnvImagePlan> {
  const source = envFilePath(project);
  const env = project.envConfigText === null ? null : parsePythonEnv(project.envConfigText, { launcherPythonVersion: bases.defaultPython, source: source ?? "python_env.yaml" });
  const python = env?.python ?? bases.defaultPython;
  const base = pythonBase(python, bases);
  const build = canonicalRequirements(env?.buildDependencies ?? []);
  const deps = canonicalRequirements(env?.dependencies ?? []);
  const referenced = new Map<string, string[]>();
  const from = source ?? "python_env.yaml";
  const local = (await referencedFiles(build, "", files, from, referenced)) || (await referencedFiles(deps, "", files, from, referenced));
  for (const name of Object.values(GENERATED)) {
    if (referenced.has(name)) throw new ImageSpecError(`${from}: the project's file ${name} has the name of a file the image generator writes; rename it`);
  }
  if (local && opts.projectDigest === undefined) throw new ImageSpecError(`${from}: installs from the project's own folder; the environment image then needs the project's digest`);
  const identity = {
    recipe: RECIPE_VERSION,
    kind: "python_env",
    base,
    python,
    buildDependencies: build,
    dependencies: deps,
    files: Object.fromEntries([...referenced].sort(([a], [b]) => (a < b ? -1 : 1)).map(([p, l]) => [p, l])),
    project: local ? opts.projectDigest! : null,
  };
  const ctx: ContextFile[] = [{ path: `env/${GENERATED.caScript}`, text: CA_SCRIPT }];
  if (build.length) ctx.push({ path: `env/${GENERATED.buildDependencies}`, text: lines(build) });
  if (deps.length) ctx.push({ path: `env/${GENERATED.dependencies}`, text: lines(deps) });
  for (const [p, l] of referenced) ctx.push({ path: `env/${p}`, text: lines(l) });
  const pip = (list: string) =>
    [`RUN --mount=type=secret,id=${CA_SECRET_ID} \\`, `    . ${SPEC_DIR}/${GENERATED.caScript} && cd ${SPEC_DIR} && \\`, `    python -m pip install -r ${list} && rm -f /tmp/parallels-ca.pem`].join(
      "\n",
    );
  const dockerfile = [
    header(`python_env: Python ${python} in a virtualenv; build_dependencies, then dependencies, installed with pip as MLflow's virtualenv env manager does.`),
    `FROM ${base}`,
    "ENV LANG=C.UTF-8 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore",
    `RUN python3 -m venv ${ENV_DIR}`,
    `ENV VIRTUAL_ENV=${ENV_DIR} PATH=${ENV_DIR}/bin:$PATH`,
    `COPY env/ ${SPEC_DIR}/`,
    ...(build.length ? [pip(GENERATED.buildDependencies)] : []),
    ...(deps.length ? [pip(GENERATED.dependencies)] : []),
    ...userLines("run"),
  ].join("\n");
  return { kind: "python_env", base, python, identity, dockerfile: `${dockerfile}\n`, files: ctx, needsProject: local, notes: [] };
}

async function planConda(project: Project, files: ProjectFiles, bases: BaseImages): Promise<EnvImagePlan> {
  const path = envFilePath(project);
  const text = project.envConfigText;
  if (path === null || text === null) throw new ImageSpecError("conda_env without an environment file");
  // Checks the file as MLflow reads it (a mapping with a dependencies list; a pinned python).
  const conversion = condaToPythonEnv(text, { launcherPythonVersion: bases.defaultPython, source: path });
  const yaml = loadYaml(text, { source: path });
  // pip lines of the file may name files too (relative to the env file's folder, as conda runs pip there).
  const pipLines: string[] = [];
  if (isPyDict(yaml)) {
    const deps = yaml.get("dependencies");
    if (Array.isArray(deps)) for (const d of deps) if (isPyDict(d) && Array.isArray(d.get("pip"))) for (const l of d.get("pip") as unknown[]) if (typeof l === "string") pipLines.push(l);
  }
  const referenced = new Map<string, string[]>();
  if (await referencedFiles(canonicalRequirements(pipLines), dirOf(path), files, path, referenced)) {
    throw new ImageSpecError(`${path}: a pip line installs from the project's own folder; a conda environment image cannot depend on the project's files (use python_env)`);
  }
  const base = `${trimSlashes(bases.registry)}/${trimSlashes(bases.micromamba)}`;
  const identity = {
    recipe: RECIPE_VERSION,
    kind: "conda_env",
    base,
    // MLflow names a conda environment after the file's text: the text, as written, defines it.
    file: { path, text },
    files: Object.fromEntries([...referenced].sort(([a], [b]) => (a < b ? -1 : 1))),
  };
  const ctx: ContextFile[] = [{ path: `env/${GENERATED.caScript}`, text: CA_SCRIPT }, { path: `env/${path}`, text }, ...[...referenced].map(([p, l]) => ({ path: `env/${p}`, text: lines(l) }))];
  const dockerfile = [
    header(`conda_env ${path}: the environment created with micromamba, as MLflow's conda env manager creates it with conda.`),
    `FROM ${base}`,
    "USER root",
    "ENV LANG=C.UTF-8 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore",
    `COPY env/ ${SPEC_DIR}/`,
    `RUN --mount=type=secret,id=${CA_SECRET_ID} \\`,
    `    . ${SPEC_DIR}/${GENERATED.caScript} && cd ${SPEC_DIR}/${dirOf(path) || "."} && \\`,
    `    micromamba create --yes --prefix ${ENV_DIR} --file ${SPEC_DIR}/${path} && \\`,
    "    micromamba clean --all --yes && rm -f /tmp/parallels-ca.pem",
    `ENV PATH=${ENV_DIR}/bin:$PATH CONDA_PREFIX=${ENV_DIR}`,
    ...userLines("run"),
  ].join("\n");
  return {
    kind: "conda_env",
    base,
    python: null,
    identity,
    dockerfile: `${dockerfile}\n`,
    files: ctx,
    needsProject: false,
    notes: conversion.warnings.filter((w) => w.includes("will not be installed") === false),
  };
}

export interface ProjectImagePlan {
  from: string;
  identity: Readonly<Record<string, unknown>>;
  dockerfile: string;
  /** Context files besides the project's own (at `project/`). */
  files: ContextFile[];
}

/** How a project's version is known: its git commit (and folder in the repository), else the digest of its files. */
export type ProjectSource = { git: string; commit: string; subdirectory?: string } | { digest: string };

/**
 * The project image: `from` (the environment image, or the user's `docker_env` image) with the
 * project's files at {@link PROJECT_DIR}, owned by the image's user, as the working directory.
 */
export function planProjectImage(from: string, source: ProjectSource, opts: { dockerEnv?: DockerEnv | null; name?: string | null } = {}): ProjectImagePlan {
  const docker = !!opts.dockerEnv;
  const what = "commit" in source ? `commit ${source.commit}${source.subdirectory ? ` (${source.subdirectory})` : ""}` : `files ${source.digest.slice(0, 19)}…`;
  const identity = { recipe: RECIPE_VERSION, kind: docker ? "docker_env" : "project", from, source };
  const dockerfile = [
    header(`the MLproject${opts.name ? ` "${opts.name}"` : ""} at ${what}, in ${docker ? "its docker_env image" : "its environment image"}.`),
    `FROM ${from}`,
    // The user's image keeps its own user unless we set ours; ours has a home (the environment image made it).
    ...(docker ? [`COPY --chown=${IMAGE_UID}:${IMAGE_UID} home/ ${HOME_DIR}/`] : []),
    `COPY --chown=${IMAGE_UID}:${IMAGE_UID} project/ ${PROJECT_DIR}`,
    `WORKDIR ${PROJECT_DIR}`,
    ...(docker ? userLines("copy") : []),
  ].join("\n");
  return { from, identity, dockerfile: `${dockerfile}\n`, files: docker ? [{ path: "home/.keep", text: "" }] : [] };
}

/** The non-root user and its home: made with RUN where the image has a shell (ours), copied where it may not (a user's image). */
function userLines(how: "run" | "copy"): string[] {
  return [...(how === "run" ? [`RUN mkdir -p ${HOME_DIR} && chown ${IMAGE_UID}:${IMAGE_UID} ${HOME_DIR}`] : []), `ENV HOME=${HOME_DIR}`, `USER ${IMAGE_UID}:${IMAGE_UID}`];
}

function header(what: string): string {
  return [`# Generated by MLflow Parallels (image recipe ${RECIPE_VERSION}); do not edit.`, `# ${what}`].join("\n");
}

const lines = (l: readonly string[]) => (l.length ? `${l.join("\n")}\n` : "");

/**
 * Sourced by the RUN steps that download packages. With the extra CA bundle mounted (the build
 * secret), pip, conda and Python trust it besides the image's default CAs; the combined bundle is
 * removed at the end of the same step, so no layer keeps it.
 */
export const CA_SCRIPT = [
  "# Generated by MLflow Parallels: trust the extra CA bundle of the build (a TLS-inspecting proxy,",
  "# a private index) besides the default CAs, for this RUN step only.",
  `if [ -s /run/secrets/${CA_SECRET_ID} ]; then`,
  "  default=/etc/ssl/certs/ca-certificates.crt",
  `  [ -s "$default" ] || default=$(python -c 'from pip._vendor import certifi; print(certifi.where())' 2>/dev/null || true)`,
  `  cat \${default:+"$default"} /run/secrets/${CA_SECRET_ID} >/tmp/parallels-ca.pem`,
  "  export PIP_CERT=/tmp/parallels-ca.pem REQUESTS_CA_BUNDLE=/tmp/parallels-ca.pem SSL_CERT_FILE=/tmp/parallels-ca.pem CONDA_SSL_VERIFY=/tmp/parallels-ca.pem MAMBA_SSL_VERIFY=/tmp/parallels-ca.pem",
  "fi",
  "",
].join("\n");

/** Thrown by the engine's parsing of env files: re-exported so callers can tell the user's file is at fault. */
export { EnvFileError };
