/**
 * @module
 * Fetching a node's MLflow project and rendering its entry point with `proto/mlproject`.
 *
 * - A local path (absolute, `file://`, or relative to the executor's projects root) is used in
 *   place. As in MLflow, when it sits in a git work tree, `mlflow.source.name` is
 *   `file://<repo root>#<subdir>` and the work tree's HEAD is the git commit. With a `version`,
 *   a local git repository is checked out at that version; a plain folder is refused
 *   (MLflow: "Setting a version is only supported for Git project URIs").
 * - A git URL (`https://`, `ssh://`, `git://`, `user@host:path`, or anything ending in `.git`)
 *   is cloned at `version` with the git CLI, cached per repository and commit.
 * - `#subdir` in the URI and `project.subdirectory` both select a folder inside it.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { isAbsolute, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { projectSourceName, stripUrlCredentials } from "../../../../proto/mlflow";
import { computeParameters, getEntryPoint, isMLprojectError, loadProject, loggedParams, type EntryPoint, type ProjectFiles } from "../../../../proto/mlproject";
import type { WorkStart } from "../../../../proto/messages";
import { AttemptFailure } from "./errors";
import { checkoutGit, GitError, localGitInfo } from "./git";
import { isUnder, realRoot, resolveUnderRoot } from "./paths";

/** A project as an attempt runs it: where it is, its source for MLflow's tags, the entry point and its logged params. */
export interface ProjectInfo {
  /** Directory the command runs in. */
  dir: string;
  sourceName: string;
  gitCommit?: string;
  gitRepoUrl?: string;
  entryPoint: string;
  /** `loggedParams`: declared then extra, shell-quoted as MLflow logs them. */
  params: [string, string][];
  /** Where it runs (`mlflow.project.backend`); default local. */
  backend?: "local" | "kubernetes";
  /** The container image it runs in (`mlflow.docker.image.uri`, `mlflow.project.env=docker`). */
  image?: string;
}

export interface FetchedProject {
  dir: string;
  sourceName: string;
  gitCommit?: string;
  gitRepoUrl?: string;
  /** A project from a git repository: where to clone it again (a pod does) and its folder in it. */
  git?: { url: string; subdirectory?: string };
}

export interface FetchOptions {
  projectsRoot: string;
  gitCacheDir: string;
  gitBin?: string;
}

type ProjectRef = WorkStart["node"]["project"];

/** A URI the local executor clones with git rather than reading in place. */
export function isGitUri(uri: string): boolean {
  return /^(https?|ssh|git|git\+[a-z]+):\/\//i.test(uri) || /^[\w.-]+@[\w.-]+:/.test(uri) || /\.git\/?$/.test(uri);
}

function subdirOf(fragment: string | undefined, subdirectory: string | undefined): string {
  const parts = [fragment, subdirectory]
    .filter((s): s is string => !!s)
    .flatMap((s) => s.split("/"))
    .filter((s) => s !== "" && s !== ".");
  if (parts.includes("..")) throw new AttemptFailure(`project subdirectory must not contain '..': ${parts.join("/")}`);
  return parts.join("/");
}

/** Where the project's files are, and the source tags MLflow would give its run. */
export async function fetchProject(ref: ProjectRef, opts: FetchOptions): Promise<FetchedProject> {
  const hash = ref.uri.indexOf("#");
  const base = hash >= 0 ? ref.uri.slice(0, hash) : ref.uri;
  const sub = subdirOf(hash >= 0 ? ref.uri.slice(hash + 1) : undefined, ref.subdirectory);
  const inside = (root: string) => {
    const dir = sub ? join(root, sub) : root;
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new AttemptFailure(`Could not find subdirectory ${sub} of ${root}`);
    // A symlinked subdirectory must not lead out of the project (or checkout).
    if (sub && !isUnder(realRoot(root), realRoot(dir))) throw new AttemptFailure(`project subdirectory ${sub} of ${root} leads outside it (${realRoot(dir)})`);
    return dir;
  };
  const clone = async (url: string) => {
    try {
      return await checkoutGit(opts.gitCacheDir, url, ref.version, opts.gitBin);
    } catch (e) {
      if (e instanceof GitError) throw new AttemptFailure(e.message, { cause: e });
      throw e;
    }
  };

  if (isGitUri(base) && !(base.startsWith("file://") && !ref.version && existsSync(localPath(base)))) {
    // A repository on this machine is a local path too: only below the projects root.
    const local = localGitPath(base);
    const co = await clone(local === undefined ? base : await resolveUnderRoot(opts.projectsRoot, local, "project", "dir"));
    return {
      dir: inside(co.dir),
      sourceName: projectSourceName(ref.uri, ref.subdirectory),
      gitCommit: co.commit,
      gitRepoUrl: stripUrlCredentials(base),
      git: { url: base, ...(sub ? { subdirectory: sub } : {}) },
    };
  }

  const path = base.startsWith("file:") ? localPath(base) : base;
  const abs = isAbsolute(path) ? resolve(path) : resolve(opts.projectsRoot, path);
  if (!existsSync(abs) || !statSync(abs).isDirectory()) {
    throw new AttemptFailure(`project folder not found: ${abs}${isAbsolute(path) ? "" : ` (relative project paths resolve against ${opts.projectsRoot})`}`);
  }
  await resolveUnderRoot(opts.projectsRoot, abs, "project folder", "dir");
  const info = await localGitInfo(abs, opts.gitBin);
  if (ref.version) {
    if (!info) throw new AttemptFailure(`Setting a version is only supported for Git project URIs (${abs} is not in a git repository)`);
    const co = await clone(info.root);
    const within = relative(info.root, abs);
    const root = within ? join(co.dir, within) : co.dir;
    const out: FetchedProject = { dir: inside(root), sourceName: projectSourceName(`file://${info.root}${within ? `#${within}` : ""}`, ref.subdirectory), gitCommit: co.commit };
    if (info.remote) out.gitRepoUrl = stripUrlCredentials(info.remote);
    return out;
  }
  const dir = inside(abs);
  if (!info) return { dir, sourceName: dir };
  const within = relative(info.root, dir);
  const out: FetchedProject = { dir, sourceName: `file://${info.root}${within ? `#${within}` : ""}`, gitCommit: info.commit };
  if (info.remote) out.gitRepoUrl = stripUrlCredentials(info.remote);
  return out;
}

/** `file:` URI → path; a malformed one fails the attempt. */
function localPath(uri: string): string {
  try {
    return fileURLToPath(uri);
  } catch (e) {
    throw new AttemptFailure(`project URI ${uri}: ${(e as Error).message}`);
  }
}

/** The local path of a git URI naming a repository on this machine (a path or `file:`), else undefined. */
function localGitPath(uri: string): string | undefined {
  if (uri.startsWith("file:")) return localPath(uri);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uri) || /^[^/]+:/.test(uri)) return undefined; // a URL, or scp-like `[user@]host:path`
  return uri;
}

/** ProjectFiles over a folder. */
export function fsProjectFiles(dir: string): ProjectFiles {
  return {
    list: () => readdirSync(dir),
    read: (p) => {
      const abs = resolve(dir, p);
      return existsSync(abs) && statSync(abs).isFile() ? readFileSync(abs, "utf8") : null;
    },
  };
}

/** Parameter names the local executor accepts (they reach the shell unquoted as extra parameters). */
export const PARAMETER_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

export interface LoadedEntryPoint {
  entryPoint: EntryPoint;
  /** Params as MLflow logs them (declared then extra, shell-quoted). */
  params: [string, string][];
  /** The project's `docker_env` image, if it has one (only where containers run it). */
  dockerImage?: string;
}

/**
 * Load the MLproject, find the entry point and check the parameters (required ones given, `uri`
 * values with a scheme) — everything MLflow checks before it creates a run. Engine errors become
 * AttemptFailure with the engine's message.
 */
export async function loadEntryPoint(
  dir: string,
  entryPointName: string,
  parameters: Record<string, string | number | boolean> | undefined,
  launcherEnv: Readonly<Record<string, string | undefined>>,
  /** `local`: steps run in the current Python environment, so a docker_env project is refused. */
  runs: "local" | "in-containers" = "local",
): Promise<LoadedEntryPoint> {
  // Extra parameters go into the command as `--name value` with the name unquoted (as MLflow
  // does): a name that is not a plain identifier could run shell code, so it is refused here.
  const bad = Object.keys(parameters ?? {}).filter((k) => !PARAMETER_NAME.test(k));
  if (bad.length > 0) {
    throw new AttemptFailure(
      `parameter name${bad.length > 1 ? "s" : ""} ${bad.map((k) => JSON.stringify(k)).join(", ")} not allowed: names must match ${PARAMETER_NAME.source} (letters, digits, "_", "." and "-", not starting with a digit, "." or "-")`,
    );
  }
  try {
    const project = await loadProject(fsProjectFiles(dir), { projectDir: dir });
    if (project.envType === "docker_env" && runs === "local") {
      // MLflow's local backend would `docker run`; this executor runs commands on the host.
      throw new AttemptFailure(
        `the project uses docker_env (image ${project.dockerEnv?.image}); the local executor runs projects in the current Python environment and cannot run docker_env projects`,
      );
    }
    const ep = getEntryPoint(project, entryPointName, { env: launcherEnv });
    if (!ep) throw new AttemptFailure(`entry point '${entryPointName}' cannot run outside Databricks`);
    computeParameters(ep, parameters ?? {});
    return { entryPoint: ep, params: loggedParams(ep, parameters ?? {}), ...(project.dockerEnv?.image ? { dockerImage: project.dockerEnv.image } : {}) };
  } catch (e) {
    if (isMLprojectError(e)) throw new AttemptFailure(e.message, { cause: e });
    throw e;
  }
}
