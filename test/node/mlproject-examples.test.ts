// Every real MLproject under test/fixtures/mlflow/examples (MLflow's examples/) loads, and its
// default entry point renders with its default parameters. Required parameters without a default
// first give the clear missing-parameter error (naming the entry point and each parameter); then
// they are supplied (an existing file for `path`, an s3:// URI for `uri`, a placeholder otherwise).
import { existsSync, mkdtempSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  checkParameters,
  computeCommand,
  type EntryPoint,
  getEntryPoint,
  isMLprojectError,
  isRequired,
  loadProject,
  type MLprojectError,
  type Project,
  type ProjectFiles,
  projectPythonEnv,
  resolveCommand,
} from "../../proto/mlproject/index.js";
// The agent reads projects from disk the same way (one implementation for Node).
import { fsProjectFiles } from "../../agent/src/executor/shared/project";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const examplesDir = resolve(repoRoot, "test/fixtures/mlflow/examples");

function findProjects(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findProjects(p));
    else if (name.toLowerCase() === "mlproject") out.push(dir);
  }
  return out.sort();
}

const projects = existsSync(examplesDir) ? findProjects(examplesDir) : [];

function catchError(f: () => unknown): MLprojectError {
  try {
    f();
  } catch (e) {
    if (isMLprojectError(e)) return e;
    throw e;
  }
  throw new Error("expected an MLprojectError");
}

function suppliedValues(ep: EntryPoint, existingFile: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const p of ep.parameters.filter(isRequired)) {
    values.set(p.name, p.type === "path" ? existingFile : p.type === "uri" ? "s3://bucket/x" : "1");
  }
  return values;
}

/**
 * Load an example. The copy of pytorch/MNIST/example2 ships only its MLproject, not the
 * conda.yaml it names: MLflow refuses that, and so must we (checked), then it is loaded with a
 * stand-in env file so its entry point can still be rendered.
 */
async function loadExample(dir: string): Promise<Project> {
  const files = fsProjectFiles(dir);
  try {
    return await loadProject(files, { projectDir: dir });
  } catch (e) {
    if (!isMLprojectError(e) || !/^Project specified .* file .*, but no such file was found\.$/.test(e.mlflowMessage ?? "")) throw e;
    expect(e.mlflowType).toBe("ExecutionException");
    const withStub: ProjectFiles = { list: files.list, read: (p) => files.read(p) ?? "name: stand-in\n" };
    return loadProject(withStub, { projectDir: dir });
  }
}

describe("real MLflow example projects", () => {
  it("finds the examples (see MANIFEST.md)", () => {
    expect(projects.length).toBeGreaterThanOrEqual(30);
  });

  for (const dir of projects) {
    it(relative(examplesDir, dir), async () => {
      const project = await loadExample(dir);
      expect(project.entryPoints.size).toBeGreaterThan(0);
      // The env file it names (or the default one) is read and parses as MLflow would.
      if (project.envType !== "docker_env" && project.envConfigText !== null) {
        const env = projectPythonEnv(project, { launcherPythonVersion: "3.11.7" });
        expect(env.python).toMatch(/^\d+\.\d+/);
      }

      // Default entry point: `main`. A project without one (rapids) gives MLflow's lookup error;
      // its first declared entry point is rendered instead.
      let ep: EntryPoint;
      if (project.entryPoints.has("main")) ep = getEntryPoint(project, "main")!;
      else {
        const err = catchError(() => getEntryPoint(project, "main"));
        expect(err.mlflowMessage).toContain("Could not find main among entry points");
        ep = project.entryPoints.values().next().value!;
      }

      const required = ep.parameters.filter(isRequired).map((p) => p.name);
      let values = new Map<string, string>();
      if (required.length) {
        const err = catchError(() => computeCommand(ep, {}));
        expect(err.mlflowType).toBe("ExecutionException");
        expect(err.entryPoint).toBe(ep.name);
        expect(err.parameters).toEqual(required);
        expect(err.mlflowMessage).toBe(`No value given for missing parameters: ${required.map((r) => `'${r}'`).join(", ")}`);
        const scratch = mkdtempSync(join(tmpdir(), "mlproject-example-"));
        const file = join(scratch, "data.csv");
        writeFileSync(file, "a\n");
        values = suppliedValues(ep, file);
      }

      const command = computeCommand(ep, values);
      expect(typeof command).toBe("string");
      expect(command.length).toBeGreaterThan(0);
      // No placeholder is left unfilled: every {name} was a declared parameter.
      for (const p of ep.parameters) expect(command).not.toContain(`{${p.name}}`);

      // Rendering for execution (path params checked/absolutised) gives the same command here,
      // since the supplied path is already absolute and no example has a remote path default.
      const resolved = await resolveCommand(ep, values, {
        cwd: dir,
        runStorageDir: tmpdir(),
        exists: (p) => existsSync(p),
        download: () => {
          throw new Error("no download expected");
        },
      });
      expect(resolved).toBe(command);
      expect(Array.isArray(checkParameters(ep, values))).toBe(true);
    });
  }

  it("renders known example commands exactly as MLflow", async () => {
    const render = async (rel: string, entry = "main") => {
      const dir = join(examplesDir, rel);
      const project = await loadExample(dir);
      return computeCommand(getEntryPoint(project, entry)!, {});
    };
    expect(await render("sklearn_elasticnet_wine")).toBe("python train.py 0.5 0.1");
    expect(await render("catboost")).toBe("python train.py 2 2 1.0");
    expect(await render("hyperparam", "train")).toBe(
      "python train.py https://raw.githubusercontent.com/mlflow/mlflow/master/tests/datasets/winequality-white.csv --batch-size 16 --epochs 32 --learning-rate 1e-1 --momentum 0.0",
    );
    expect(await render("tensorflow")).toBe("python train.py");
  });
});
