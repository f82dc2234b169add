// Unit tests of the Python-compatibility pieces and the strict check.
import { describe, expect, it } from "vitest";
import {
  checkParameters,
  computeCommand,
  condaToPythonEnv,
  filesFromMap,
  getEntryPoint,
  isMLprojectError,
  loadProject,
  mlflowText,
  type MLprojectError,
  parseParamFlags,
  parsePythonEnv,
  parseUserArgs,
  PyDate,
  pyFormat,
  pyStr,
  resolveEnvManager,
  shlexQuote,
  TemplateError,
} from "./index.js";
import { floatRepr, posixAbspath, splitextExt, strRepr, urlSplit } from "./internal.js";

async function rejection(p: Promise<unknown>): Promise<MLprojectError> {
  try {
    await p;
  } catch (e) {
    if (isMLprojectError(e)) return e;
    throw e;
  }
  throw new Error("no error");
}

function err(f: () => unknown): MLprojectError {
  try {
    f();
  } catch (e) {
    if (isMLprojectError(e)) return e;
    throw e;
  }
  throw new Error("no error");
}

describe("Python str()", () => {
  it.each([
    [1.0, "1.0"],
    [0.1, "0.1"],
    [1e-5, "1e-05"],
    [0.0001, "0.0001"],
    [1e16, "1e+16"],
    [1e15, "1000000000000000.0"],
    [123456789.123, "123456789.123"],
    [1.5e-7, "1.5e-07"],
    [-0.0, "-0.0"],
    [Infinity, "inf"],
    [NaN, "nan"],
    [2.5e20, "2.5e+20"],
  ])("float %d → %s", (x, want) => expect(floatRepr(x)).toBe(want));

  it("other types", () => {
    expect(pyStr(null)).toBe("None");
    expect(pyStr(true)).toBe("True");
    expect(pyStr(10n)).toBe("10");
    expect(pyStr(new PyDate(2021, 1, 1))).toBe("2021-01-01");
    expect(pyStr(["a", 1n, null, new Map([["k", 1.5]])])).toBe("['a', 1, None, {'k': 1.5}]");
    expect(strRepr("it's")).toBe(`"it's"`);
    expect(strRepr("a\n\u0001é\u200b")).toBe("'a\\n\\x01é\\u200b'");
  });
});

describe("shlex.quote", () => {
  it.each([
    ["", "''"],
    ["abc-_./:=+,@%", "abc-_./:=+,@%"],
    ["a b", "'a b'"],
    ["café", "'café'"],
    ["friend; echo 'hi'", `'friend; echo '"'"'hi'"'"''`],
  ])("%j", (s, want) => expect(shlexQuote(s)).toBe(want));
});

describe("str.format", () => {
  const kw = new Map([
    ["a", "x"],
    ["batch-size", "64"],
  ]);
  it("renders", () => {
    expect(pyFormat("{a} {{a}} {batch-size} {a!r} {a:>3} {a:.0}|", kw)).toBe("x {a} 64 'x'   x |");
    expect(pyFormat("{a[0]}", kw)).toBe("x");
  });
  it.each([
    ["{b}", "KeyError", "'b'"],
    ["{}", "IndexError", "Replacement index 0 out of range for positional args tuple"],
    ["{0}", "IndexError", "Replacement index 0 out of range for positional args tuple"],
    ["{a:.2f}", "ValueError", "Unknown format code 'f' for object of type 'str'"],
    ["{a:d}", "ValueError", "Unknown format code 'd' for object of type 'str'"],
    ["{a", "ValueError", "expected '}' before end of string"],
    ["a}", "ValueError", "Single '}' encountered in format string"],
    ["{a!x}", "ValueError", "Unknown conversion specifier x"],
    ["{a.upper}", "AttributeError", "'str' object has no attribute 'upper'"],
    ["{a[1]}", "IndexError", "string index out of range"],
    ["{b} {", "KeyError", "'b'"],
  ])("%j → %s", async (template, type, message) => {
    const project = await loadProject(filesFromMap({ MLproject: `entry_points:\n  main:\n    parameters:\n      a: {default: x}\n    command: '${template}'\n` }));
    const e = err(() => computeCommand(getEntryPoint(project, "main")!, {}));
    expect(e).toBeInstanceOf(TemplateError);
    expect(e.mlflowType).toBe(type);
    expect(e.mlflowMessage).toBe(message);
    expect(e.entryPoint).toBe("main");
  });
});

describe("paths and URIs", () => {
  it("urlsplit / splitext / abspath", () => {
    expect(urlSplit("s3://b/k?x#y")).toEqual({ scheme: "s3", netloc: "b", path: "/k" });
    expect(urlSplit("C:/x").scheme).toBe("c");
    expect(urlSplit("/tmp/x").scheme).toBe("");
    expect(splitextExt("a/b.py")).toBe(".py");
    expect(splitextExt(".py")).toBe("");
    expect(splitextExt("a.b/c")).toBe("");
    expect(posixAbspath("../d/./e", "/a/b")).toBe("/a/d/e");
  });
});

describe("projects", () => {
  const mlproject = `name: p
entry_points:
  main:
    parameters:
      alpha: float
      lr: {type: float, default: 1e-3}
      epochs: {type: int, default: 1.0}
      devices: {type: int, default: auto}
      ok: {type: int, default: 3}
      data: {type: uri, default: "s3://b/k"}
    command: "python t.py {alpha} {lr}"
`;
  it("strict check names entry point and parameter", async () => {
    const ep = getEntryPoint(await loadProject(filesFromMap({ MLproject: mlproject })), "main")!;
    const w = checkParameters(ep, {});
    expect(w.map((x) => [x.code, x.parameter])).toEqual([
      ["missing_required", "alpha"],
      ["not_an_integer", "epochs"],
      ["not_an_integer", "devices"],
    ]);
    expect(checkParameters(ep, { alpha: "abc" }).map((x) => [x.code, x.parameter, x.value])[0]).toEqual(["not_a_number", "alpha", "abc"]);
    expect(checkParameters(ep, { alpha: 0.5, epochs: 3, devices: "2" })).toEqual([]);
    expect(w[0]!.message).toContain("'main'");
  });

  it("empty / list / scalar MLproject give clear errors", async () => {
    for (const [text, what] of [
      ["", "is empty"],
      ["# c\n", "is empty"],
      ["- a\n", "holds a list"],
      ["42", "holds a int"],
    ] as const) {
      const e = await loadProject(filesFromMap({ MLproject: text })).catch((x: unknown) => x as MLprojectError);
      expect(isMLprojectError(e)).toBe(true);
      expect((e as MLprojectError).message).toContain(what);
      expect((e as MLprojectError).mlflowType).toBe("AttributeError");
    }
  });

  it("bad structures name the entry point and parameter", async () => {
    const load = (t: string): Promise<MLprojectError> =>
      loadProject(filesFromMap({ MLproject: t })).then(
        () => {
          throw new Error("expected an error");
        },
        (x: unknown) => x as MLprojectError,
      );
    const e1 = await load("entry_points:\n  main:\n    parameters:\n      alpha: 5\n");
    expect([e1.entryPoint, e1.parameter]).toEqual(["main", "alpha"]);
    const e2 = await load("entry_points:\n  main:\n");
    expect(e2.entryPoint).toBe("main");
    const e3 = await load("entry_points:\n");
    expect(e3.message).toContain("entry_points");
    const p = await loadProject(filesFromMap({ MLproject: "entry_points:\n  main:\n    parameters: {}\n" }));
    expect(err(() => computeCommand(getEntryPoint(p, "main")!, {})).message).toContain("has no command");
  });

  it(".R and .sh entry points, SHELL handling", async () => {
    const p = await loadProject(filesFromMap({}));
    expect(computeCommand(getEntryPoint(p, "a b.R")!, {})).toBe(`Rscript -e "mlflow::mlflow_source(''a b.R'')" --args`);
    expect(computeCommand(getEntryPoint(p, "x.sh")!, { k: 1 })).toBe("bash x.sh --k 1");
    expect(computeCommand(getEntryPoint(p, "x.sh", { env: { SHELL: "/bin/zsh" } })!, {})).toBe("/bin/zsh x.sh");
  });
});

describe("CLI, env files, env manager", () => {
  it("-P parsing", () => {
    expect(Object.fromEntries(parseParamFlags(["-P", "a=1=2", "-Pb=x", "--param-list", "c=", "--param-list=d=y", "-e", "main"]))).toEqual({ a: "1=2", b: "x", c: "", d: "y" });
    expect(err(() => parseParamFlags(["-P", "novalue"])).message).toBe("Invalid format for -P parameter: 'novalue'. Use -P name=value.");
    expect(err(() => parseParamFlags(["-P"])).mlflowType).toBe("click.UsageError");
    expect(parseUserArgs(["privileged"], "A").get("privileged")).toBe(true);
  });

  it("conda conversion", () => {
    const opts = { launcherPythonVersion: "3.11.7" };
    expect(err(() => condaToPythonEnv("dependencies:\n  - python\n", opts)).mlflowMessage).toBe("Invalid dependency for python: python. It must be pinned (e.g. python=3.8.13).");
    const c = condaToPythonEnv("dependencies:\n  - pip\n  - {pip: [a]}\n", opts);
    expect([c.python, c.buildDependencies, c.dependencies]).toEqual(["3.11.7", ["pip"], ["a"]]);
    expect(c.warnings[0]).toContain("does not include a python version");
    expect(err(() => condaToPythonEnv("dependencies:\n  - 5\n", opts)).mlflowMessage).toContain("Invalid conda dependency: 5.");
  });

  it("env manager", () => {
    expect(resolveEnvManager("conda_env")).toBe("conda");
    expect(resolveEnvManager("python_env")).toBe("virtualenv");
    expect(resolveEnvManager("docker_env")).toBe("local");
    expect(err(() => resolveEnvManager("python_env", "conda")).mlflowType).toBe("MlflowException");
  });
});

describe("MLflow's own text (mlflowMessage)", () => {
  const opts = { launcherPythonVersion: "3.11.7" };

  it("is carried beside a better message", () => {
    const e = err(() => parsePythonEnv("python: '3.10'\nfoo: 1\n", opts));
    expect(e.mlflowMessage).toBe("_PythonEnv.__init__() got an unexpected keyword argument 'foo'");
    expect(e.message).toContain("unknown key 'foo'");
    expect(e.message).not.toContain("_PythonEnv");
    expect(mlflowText(e)).toBe(e.mlflowMessage);
  });

  it("is undefined where the engine does not know MLflow's wording; the message stands in", async () => {
    // PyYAML's syntax error texts are not reproduced.
    const e = await rejection(loadProject(filesFromMap({ MLproject: "a: b: c\n" })));
    expect(e.mlflowType).toBe("yaml.YAMLError");
    expect(e.mlflowMessage).toBeUndefined();
    expect(mlflowText(e)).toBe(e.message);
  });

  const load = (files: Record<string, string>) => rejection(loadProject(filesFromMap(files), { projectDir: "/p" }));
  const spark = (body: string) => load({ MLproject: `databricks_spark_job:\n${body}` });
  it.each<[string, () => MLprojectError | Promise<MLprojectError>, string]>([
    ["-P without =", () => err(() => parseParamFlags(["-P", "x"])), "Invalid format for -P parameter: 'x'. Use -P name=value."],
    ["-P repeated", () => err(() => parseParamFlags(["-P", "a=1", "-P", "a=2"])), "Repeated parameter: 'a'"],
    ["-P without value", () => err(() => parseParamFlags(["-P"])), "Option '-P' requires an argument."],
    ["conda python unpinned", () => err(() => condaToPythonEnv("dependencies:\n  - python\n", opts)), "Invalid dependency for python: python. It must be pinned (e.g. python=3.8.13)."],
    ["conda python <", () => err(() => condaToPythonEnv("dependencies:\n  - python<3.9\n", opts)), "Invalid version comparator for python: '<'. Must be one of ['<=', '>=', '=', '==']."],
    ["conda dependency 5", () => err(() => condaToPythonEnv("dependencies:\n  - 5\n", opts)), 'Invalid conda dependency: 5. Must be str or dict in the form of {"pip": [...]}'],
    [
      "env manager",
      () => err(() => resolveEnvManager("python_env", "conda")),
      "python_env project cannot be executed using conda. Set `--env-manager` to 'virtualenv' or 'local' to execute this project.",
    ],
    ["two env fields", () => load({ MLproject: "python_env: a.yaml\nconda_env: b.yaml\n" }), "Project cannot contain multiple environment fields: {'python_env', 'conda_env'}"],
    ["missing python_env file", () => load({ MLproject: "python_env: env.yaml\n" }), "Project specified python_env file /p/env.yaml, but no such file was found."],
    ["missing conda file", () => load({ MLproject: "conda_env: env.yaml\n" }), "Project specified conda environment file /p/env.yaml, but no such file was found."],
    [
      "docker without image",
      () => load({ MLproject: "docker_env:\n  volumes: [a]\n" }),
      "Project configuration (MLproject file) was invalid: Docker environment specified but no image attribute found.",
    ],
    [
      "docker volumes",
      () => load({ MLproject: "docker_env:\n  image: i\n  volumes: [1]\n" }),
      'Project configuration (MLproject file) was invalid: Docker volumes must be a list of strings, e.g.: \'["/path1/:/path1", "/path2/:/path2"])',
    ],
    [
      "docker environment",
      () => load({ MLproject: "docker_env:\n  image: i\n  environment: [1]\n" }),
      'Project configuration (MLproject file) was invalid: environment must be a list containing either strings (to copy environment variables from host system) or lists of string pairs (to define new environment variables).E.g.: \'[["NEW_VAR", "new_value"], "VAR_TO_COPY_FROM_HOST"])',
    ],
    ["spark job not a mapping", () => spark("  x\n"), "'str' object has no attribute 'get'"],
    ["spark job empty", () => spark("  parameters: []\n"), "Databricks Spark job requires either 'databricks_spark_job.python_file' setting or 'entry_points' setting."],
    ["spark job with docker", () => spark("  python_file: a.py\ndocker_env: {image: i}\n"), "Databricks Spark job does not support setting docker environment."],
    [
      "spark entry point",
      async () => {
        const p = await loadProject(filesFromMap({ MLproject: "databricks_spark_job: {}\nentry_points:\n  a:\n    command: x\n" }));
        return err(() => getEntryPoint(p, "main"));
      },
      "The entry point 'main' is not defined in the Databricks spark job MLproject file.",
    ],
  ])("%s", async (_what, make, text) => {
    expect((await make()).mlflowMessage).toBe(text);
  });
});
