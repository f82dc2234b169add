// The generated Dockerfiles of MLflow's own example MLprojects (test/fixtures/mlflow/examples,
// parsed by the MLproject engine), and the content-addressed tags: stable under what pip and
// MLflow treat as the same environment, changed by anything that changes it.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { type Project, type ProjectFiles, filesFromMap, loadProject } from "../mlproject/index";
import {
  type BaseImages,
  CA_SCRIPT,
  canonicalRequirement,
  canonicalRequirements,
  contentTag,
  DEFAULT_BASE_IMAGES,
  envImageRef,
  filesDigest,
  ImageSpecError,
  planEnvImage,
  planProjectImage,
  projectImageRef,
  pythonBase,
  requirementLines,
  splitImageRef,
} from "./index";

const EXAMPLES = resolve(dirname(fileURLToPath(import.meta.url)), "../../test/fixtures/mlflow/examples");

/** ProjectFiles over a folder (the agent has its own; proto stays free of it). */
function folder(dir: string, extra: Record<string, string> = {}): ProjectFiles {
  return {
    list: () => [...new Set([...readdirSync(dir), ...Object.keys(extra).map((p) => p.split("/")[0]!)])],
    read: (p) => {
      if (p in extra) return extra[p]!;
      try {
        return statSync(join(dir, p)).isFile() ? readFileSync(join(dir, p), "utf8") : null;
      } catch {
        return null;
      }
    },
  };
}

/** Every example project folder (one holding an MLproject, any capitalisation). */
function exampleProjects(dir = EXAMPLES): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...exampleProjects(p));
    else if (e.toLowerCase() === "mlproject") out.push(dir);
  }
  return out.sort();
}

async function example(rel: string): Promise<{ project: Project; files: ProjectFiles }> {
  const files = folder(join(EXAMPLES, rel));
  return { project: await loadProject(files), files };
}

const bases: BaseImages = { ...DEFAULT_BASE_IMAGES };

describe("requirement lines in canonical form", () => {
  it.each([
    ["scikit-learn==1.4.2", "scikit-learn==1.4.2"],
    ["Scikit_Learn == 1.4.2", "scikit-learn==1.4.2"],
    ["mlflow>=1.0", "mlflow>=1.0"],
    ["numpy <2, >=1.20", "numpy<2,>=1.20"],
    ["numpy>=1.20,<2", "numpy<2,>=1.20"],
    ["numpy (>=1.20, <2)", "numpy<2,>=1.20"],
    ["jsonargparse[signatures]>=4.17.0", "jsonargparse[signatures]>=4.17.0"],
    ["Requests[Socks,security] >= 2", "requests[security,socks]>=2"],
    ["pywin32 ; sys_platform=='win32'", "pywin32; sys_platform == 'win32'"],
    ["torch==2.0 --hash=sha256:bb --hash=sha256:aa", "torch==2.0 --hash=sha256:aa --hash=sha256:bb"],
    ["pkg @ https://example.com/pkg-1.0.tar.gz", "pkg @ https://example.com/pkg-1.0.tar.gz"],
    ["-r  requirements.txt", "-r requirements.txt"],
    ["--requirement=reqs/base.txt", "-r reqs/base.txt"],
    ["-rrequirements.txt", "-r requirements.txt"],
    ["--constraint c.txt", "-c c.txt"],
    ["-e .", "-e ."],
    ["--index-url https://pypi.example/simple", "--index-url=https://pypi.example/simple"],
    ["./local_pkg", "./local_pkg"],
    ["https://example.com/x.whl", "https://example.com/x.whl"],
  ])("%s → %s", (line, want) => expect(canonicalRequirement(line)).toBe(want));

  it("a list: sorted, duplicates once; a requirements file: continuations joined, comments dropped", () => {
    expect(canonicalRequirements(["pandas", "mlflow>=1.0", "Pandas", "scikit-learn==1.4.2"])).toEqual(["mlflow>=1.0", "pandas", "scikit-learn==1.4.2"]);
    expect(requirementLines("# pinned\nnumpy==1.26 \\\n  --hash=sha256:aa\n\nscipy  # the solver\nurl#frag\n")).toEqual(["numpy==1.26   --hash=sha256:aa", "scipy", "url#frag"]);
  });
});

describe("base images", () => {
  it("a declared Python names its base through the mapping (registry, repository, tag template, explicit tags)", () => {
    expect(pythonBase("3.11", bases)).toBe("docker.io/library/python:3.11-slim");
    expect(pythonBase("3.8.13", bases)).toBe("docker.io/library/python:3.8.13-slim");
    const mirror: BaseImages = { ...bases, registry: "registry.corp/mirror/", pythonRepository: "python", pythonTag: "{minor}-bookworm", pythonTags: { "3.8": "3.8.18-slim-bookworm" } };
    expect(pythonBase("3.11.4", mirror)).toBe("registry.corp/mirror/python:3.11-bookworm");
    expect(pythonBase("3.8", mirror)).toBe("registry.corp/mirror/python:3.8.18-slim-bookworm");
    expect(pythonBase("3.8.2", mirror)).toBe("registry.corp/mirror/python:3.8.18-slim-bookworm");
    expect(() => pythonBase("3.8; rm -rf /", bases)).toThrow(ImageSpecError);
    expect(() => pythonBase("latest", bases)).toThrow(/expected a version such as 3.11/);
  });
});

describe("the Dockerfiles of MLflow's example projects", () => {
  it("sklearn_elasticnet_wine (python_env): the launcher's Python, a virtualenv, build_dependencies then dependencies", async () => {
    const { project, files } = await example("sklearn_elasticnet_wine");
    expect(project.envType).toBe("python_env");
    const plan = (await planEnvImage(project, files, bases))!;
    expect(plan.kind).toBe("python_env");
    expect(plan.python).toBe("3.11"); // python_env.yaml names none: MLflow uses the launcher's
    expect(plan.dockerfile).toBe(
      [
        "# Generated by MLflow Parallels (image recipe 1); do not edit.",
        "# python_env: Python 3.11 in a virtualenv; build_dependencies, then dependencies, installed with pip as MLflow's virtualenv env manager does.",
        "FROM docker.io/library/python:3.11-slim",
        "ENV LANG=C.UTF-8 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore",
        "RUN python3 -m venv /opt/mlflow-env",
        "ENV VIRTUAL_ENV=/opt/mlflow-env PATH=/opt/mlflow-env/bin:$PATH",
        "COPY env/ /opt/mlflow-env-spec/",
        "RUN --mount=type=secret,id=parallels-ca \\",
        "    . /opt/mlflow-env-spec/parallels-ca.sh && cd /opt/mlflow-env-spec && \\",
        "    python -m pip install -r parallels.build-dependencies.txt && rm -f /tmp/parallels-ca.pem",
        "RUN --mount=type=secret,id=parallels-ca \\",
        "    . /opt/mlflow-env-spec/parallels-ca.sh && cd /opt/mlflow-env-spec && \\",
        "    python -m pip install -r parallels.dependencies.txt && rm -f /tmp/parallels-ca.pem",
        "RUN mkdir -p /home/mlflow && chown 10001:10001 /home/mlflow",
        "ENV HOME=/home/mlflow",
        "USER 10001:10001",
        "",
      ].join("\n"),
    );
    expect(Object.fromEntries(plan.files.map((f) => [f.path, f.text]))).toEqual({
      "env/parallels-ca.sh": CA_SCRIPT,
      "env/parallels.build-dependencies.txt": "pip\n",
      "env/parallels.dependencies.txt": "mlflow>=1.0\npandas\nscikit-learn==1.4.2\n",
    });
    expect(plan.needsProject).toBe(false);

    const from = envImageRef({ registry: "registry.example:5000", prefix: "ml" }, await contentTag(plan.identity));
    expect(from).toMatch(/^registry\.example:5000\/ml\/env:[0-9a-f]{32}$/);
    const image = planProjectImage(from, { git: "https://git.example/ml.git", commit: "0123456789abcdef0123456789abcdef01234567", subdirectory: "wine" }, { name: project.name });
    expect(image.dockerfile).toBe(
      [
        "# Generated by MLflow Parallels (image recipe 1); do not edit.",
        '# the MLproject "tutorial" at commit 0123456789abcdef0123456789abcdef01234567 (wine), in its environment image.',
        `FROM ${from}`,
        "COPY --chown=10001:10001 project/ /mlflow/projects/code/",
        "WORKDIR /mlflow/projects/code/",
        "",
      ].join("\n"),
    );
    expect(projectImageRef({ registry: "registry.example:5000", prefix: "ml" }, project.name, await contentTag(image.identity))).toMatch(/^registry\.example:5000\/ml\/project-tutorial:[0-9a-f]{32}$/);
  });

  it("fastai (conda_env): micromamba creates the environment from the file as written", async () => {
    const { project, files } = await example("fastai");
    expect(project.envType).toBe("conda_env");
    const plan = (await planEnvImage(project, files, bases))!;
    expect(plan.kind).toBe("conda_env");
    expect(plan.dockerfile).toBe(
      [
        "# Generated by MLflow Parallels (image recipe 1); do not edit.",
        "# conda_env conda.yaml: the environment created with micromamba, as MLflow's conda env manager creates it with conda.",
        "FROM docker.io/mambaorg/micromamba:2.0.5",
        "USER root",
        "ENV LANG=C.UTF-8 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore",
        "COPY env/ /opt/mlflow-env-spec/",
        "RUN --mount=type=secret,id=parallels-ca \\",
        "    . /opt/mlflow-env-spec/parallels-ca.sh && cd /opt/mlflow-env-spec/. && \\",
        "    micromamba create --yes --prefix /opt/mlflow-env --file /opt/mlflow-env-spec/conda.yaml && \\",
        "    micromamba clean --all --yes && rm -f /tmp/parallels-ca.pem",
        "ENV PATH=/opt/mlflow-env/bin:$PATH CONDA_PREFIX=/opt/mlflow-env",
        "RUN mkdir -p /home/mlflow && chown 10001:10001 /home/mlflow",
        "ENV HOME=/home/mlflow",
        "USER 10001:10001",
        "",
      ].join("\n"),
    );
    expect(plan.files.find((f) => f.path === "env/conda.yaml")!.text).toBe(readFileSync(join(EXAMPLES, "fastai/conda.yaml"), "utf8"));
  });

  it("rapids (conda_env in a sub-folder): the file keeps its path; conda runs from its folder", async () => {
    const { project, files } = await example("rapids/mlflow_project");
    const plan = (await planEnvImage(project, files, bases))!;
    expect(plan.files.map((f) => f.path).sort()).toEqual(["env/envs/conda.yaml", "env/parallels-ca.sh"]);
    expect(plan.dockerfile).toContain("cd /opt/mlflow-env-spec/envs && \\");
    expect(plan.dockerfile).toContain("--file /opt/mlflow-env-spec/envs/conda.yaml");
  });

  it("docker (docker_env): no environment image; the user's image is the base, the project added, our user and home", async () => {
    const { project, files } = await example("docker");
    expect(project.envType).toBe("docker_env");
    expect(await planEnvImage(project, files, bases)).toBeNull();
    const image = planProjectImage(
      project.dockerEnv!.image,
      { digest: "sha256:abababababababababababababababababababababababababababababababab" },
      { dockerEnv: project.dockerEnv, name: project.name },
    );
    expect(image.dockerfile).toBe(
      [
        "# Generated by MLflow Parallels (image recipe 1); do not edit.",
        '# the MLproject "docker-example" at files sha256:abababababab…, in its docker_env image.',
        "FROM mlflow-docker-example",
        "COPY --chown=10001:10001 home/ /home/mlflow/",
        "COPY --chown=10001:10001 project/ /mlflow/projects/code/",
        "WORKDIR /mlflow/projects/code/",
        "ENV HOME=/home/mlflow",
        "USER 10001:10001",
        "",
      ].join("\n"),
    );
    expect(image.files).toEqual([{ path: "home/.keep", text: "" }]);
  });

  const all = exampleProjects();
  it("covers every example project of the fixtures", () => expect(all.length).toBeGreaterThanOrEqual(30));

  it.each(all.map((d) => [relative(EXAMPLES, d)]))("%s: one FROM of the mapped base, our user, pip or micromamba for each dependency, no CA in the image", async (rel) => {
    if (rel === "pytorch/MNIST/example2") {
      // Its conda.yaml is not in the fixtures: MLflow refuses the project, and so does the engine.
      await expect(example(rel)).rejects.toThrow("Project specified conda environment file conda.yaml, but no such file was found.");
      return;
    }
    const { project, files } = await example(rel);
    let plan: Awaited<ReturnType<typeof planEnvImage>>;
    try {
      plan = await planEnvImage(project, files, bases);
    } catch (e) {
      // virtualenv/project's python_env.yaml says `-r requirements.txt`; the example's file is not in the fixtures.
      expect(rel).toBe("virtualenv/project");
      expect((e as Error).message).toBe("python_env.yaml: -r requirements.txt names requirements.txt, which the project does not have");
      return;
    }
    if (project.envType === "docker_env") {
      expect(plan).toBeNull();
      return;
    }
    expect(plan).not.toBeNull();
    const df = plan!.dockerfile;
    expect(df.match(/^FROM /gm)).toHaveLength(1);
    expect(df).toMatch(/^USER 10001:10001$/m);
    expect(df).not.toContain("BEGIN CERTIFICATE");
    // Every RUN that downloads gets the CA as a build secret, never as a file of the context.
    for (const run of df.split("\n").filter((l) => l.startsWith("RUN") && !l.startsWith("RUN mkdir") && !l.startsWith("RUN python3 -m venv"))) {
      expect(run).toBe("RUN --mount=type=secret,id=parallels-ca \\");
    }
    if (plan!.kind === "python_env") {
      const env = project.envConfigText ? (project.envConfigText.match(/^python: "(.*)"$/m)?.[1] ?? "3.11") : "3.11";
      expect(plan!.python).toBe(env);
      expect(df).toContain(`FROM docker.io/library/python:${env}-slim\n`);
      const deps = plan!.files.find((f) => f.path === "env/parallels.dependencies.txt")?.text ?? "";
      expect(deps.split("\n").filter(Boolean)).toEqual(canonicalRequirements((plan!.identity.dependencies as string[]) ?? []));
    } else {
      expect(df).toContain("FROM docker.io/mambaorg/micromamba:2.0.5\n");
      expect(df).toContain("micromamba create --yes --prefix /opt/mlflow-env");
    }
  });
});

describe("content-addressed tags", () => {
  const pythonEnv = (deps: string[], build = ["pip"], python?: string) =>
    [...(python ? [`python: "${python}"`] : []), "build_dependencies:", ...build.map((d) => `  - ${d}`), "dependencies:", ...deps.map((d) => `  - ${d}`), ""].join("\n");
  const tagOf = async (envText: string, extra: Record<string, string> = {}, b = bases) => {
    const files = filesFromMap({ MLproject: "name: t\npython_env: python_env.yaml\nentry_points:\n  main:\n    command: python t.py\n", "python_env.yaml": envText, ...extra });
    const plan = (await planEnvImage(await loadProject(files), files, b))!;
    return contentTag(plan.identity);
  };

  it("is stable under reordering, name spelling and whitespace, which pip and MLflow treat as the same environment", async () => {
    const a = await tagOf(pythonEnv(["scikit-learn==1.4.2", "mlflow>=1.0", "pandas"]));
    expect(a).toMatch(/^[0-9a-f]{32}$/);
    expect(await tagOf(pythonEnv(["pandas", "scikit-learn==1.4.2", "mlflow>=1.0"]))).toBe(a);
    expect(await tagOf(pythonEnv(["Pandas", "scikit_learn == 1.4.2", "MLflow >= 1.0"]))).toBe(a);
    expect(await tagOf(pythonEnv(["pandas", "pandas", "mlflow>=1.0", "scikit-learn==1.4.2"]))).toBe(a);
    // Three times the same tag for the same definition (the hash is of the definition, not of when).
    expect(await tagOf(pythonEnv(["scikit-learn==1.4.2", "mlflow>=1.0", "pandas"]))).toBe(a);
  });

  it("changes when a pinned version, a dependency, the Python, the base mapping or a build dependency changes", async () => {
    const a = await tagOf(pythonEnv(["scikit-learn==1.4.2", "mlflow>=1.0", "pandas"]));
    const others = await Promise.all([
      tagOf(pythonEnv(["scikit-learn==1.4.1", "mlflow>=1.0", "pandas"])),
      tagOf(pythonEnv(["scikit-learn==1.4.2", "mlflow>=2.0", "pandas"])),
      tagOf(pythonEnv(["scikit-learn==1.4.2", "mlflow>=1.0"])),
      tagOf(pythonEnv(["scikit-learn==1.4.2", "mlflow>=1.0", "pandas", "scipy"])),
      tagOf(pythonEnv(["scikit-learn==1.4.2", "mlflow>=1.0", "pandas"], ["pip"], "3.10")),
      tagOf(pythonEnv(["scikit-learn==1.4.2", "mlflow>=1.0", "pandas"], ["pip==23.0"])),
      // A dependency moved to the build dependencies is installed in another step.
      tagOf(pythonEnv(["scikit-learn==1.4.2", "mlflow>=1.0"], ["pip", "pandas"])),
      tagOf(pythonEnv(["scikit-learn==1.4.2", "mlflow>=1.0", "pandas"]), {}, { ...bases, registry: "mirror.corp" }),
    ]);
    expect(new Set([a, ...others]).size).toBe(others.length + 1);
  });

  it("follows the files that -r names: their content counts, their order does not", async () => {
    const env = pythonEnv(["-r requirements.txt", "mlflow"]);
    const a = await tagOf(env, { "requirements.txt": "numpy==1.26.4\nscipy>=1.10\n" });
    expect(await tagOf(env, { "requirements.txt": "# deps\nscipy >= 1.10\nNumPy==1.26.4\n" })).toBe(a);
    expect(await tagOf(env, { "requirements.txt": "numpy==1.26.3\nscipy>=1.10\n" })).not.toBe(a);
    // Nested: a file named by a named file, relative to it.
    const nested = await tagOf(env, { "requirements.txt": "-r reqs/base.txt\n", "reqs/base.txt": "six==1.16.0\n" });
    expect(await tagOf(env, { "requirements.txt": "-r reqs/base.txt\n", "reqs/base.txt": "six==1.17.0\n" })).not.toBe(nested);
    await expect(tagOf(env, { "requirements.txt": "-r ../outside.txt\n" })).rejects.toThrow("requirements.txt: ../outside.txt leads outside the project");
  });

  it("a project image's tag follows its base image and its commit (or files)", async () => {
    const src = { git: "https://git.example/ml.git", commit: "a".repeat(40) };
    const t = await contentTag(planProjectImage("r/ml/env:1", src).identity);
    expect(await contentTag(planProjectImage("r/ml/env:1", src).identity)).toBe(t);
    expect(await contentTag(planProjectImage("r/ml/env:2", src).identity)).not.toBe(t);
    expect(await contentTag(planProjectImage("r/ml/env:1", { ...src, commit: "b".repeat(40) }).identity)).not.toBe(t);
    const d1 = await filesDigest([
      { path: "a.py", executable: false, sha256: "1" },
      { path: "b.sh", executable: true, sha256: "2" },
    ]);
    expect(
      await filesDigest([
        { path: "b.sh", executable: true, sha256: "2" },
        { path: "a.py", executable: false, sha256: "1" },
      ]),
    ).toBe(d1);
    expect(
      await filesDigest([
        { path: "b.sh", executable: false, sha256: "2" },
        { path: "a.py", executable: false, sha256: "1" },
      ]),
    ).not.toBe(d1);
  });

  it("references split into registry, repository, tag and digest", () => {
    expect(splitImageRef("127.0.0.1:5000/ml/env:abc")).toEqual({ registry: "127.0.0.1:5000", repository: "ml/env", tag: "abc", digest: null });
    expect(splitImageRef("reg.example/ml/project-x:t@sha256:00")).toEqual({ registry: "reg.example", repository: "ml/project-x", tag: "t", digest: "sha256:00" });
    expect(projectImageRef({ registry: "", prefix: "mlflow-parallels" }, "cuML RF test", "t")).toBe("localhost/mlflow-parallels/project-cuml-rf-test:t");
  });
});
