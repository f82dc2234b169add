import { describe, expect, it } from "vitest";
import { MAX_DAG_BYTES, MAX_NODES, parseDagText, validateDag, type Problem } from "./index";
import { wideDag } from "./testing";

const project = { uri: "https://github.com/example/project.git" };

/** Problems of an invalid document, as `path: message` lines. */
function problemsOf(input: unknown): string[] {
  const r = validateDag(input);
  if (r.ok) throw new Error("expected problems, the DAG is valid");
  return r.problems.map((p: Problem) => `${p.path}: ${p.message}`);
}

describe("validateDag: valid documents", () => {
  it("applies defaults and fills the experiment with the DAG name", () => {
    const r = validateDag({ name: "demo", nodes: [{ id: "a", project }] });
    expect(r).toEqual({
      ok: true,
      dag: {
        name: "demo",
        experiment: "demo",
        failurePolicy: "failFast",
        nodes: [{ id: "a", project, entryPoint: "main", parallelism: 1, retries: 0 }],
      },
    });
  });

  it("accepts every field", () => {
    const r = validateDag({
      name: "images-v2",
      description: "pre-process then infer",
      params: { lr: 0.1, epochs: 3, tag: "x", dry: false },
      failurePolicy: "continue",
      experiment: "Images / nightly",
      nodes: [
        { id: "fetch", project: { uri: "./local/project" }, partition: { by: "none" } },
        {
          id: "prep",
          project: { uri: "git@github.com:org/repo.git", version: "v1.2", subdirectory: "steps/prep" },
          entryPoint: "preprocess",
          parameters: { size: 224, gray: true, mode: "fast" },
          cluster: { gpu: "true", zone: "onprem" },
          parallelism: 10,
          partition: { by: "hash", input: "images", key: "stem", partitions: 64 },
          inputs: { images: { node: "fetch", path: "out" }, labels: { run: "abc123" }, extra: { uri: "s3://b/k" } },
          after: ["fetch"],
          resources: { cpu: "500m", memory: "512Mi", gpu: 1 },
          retries: 3,
          timeoutSeconds: 3600,
          env: { LOG_LEVEL: "debug", _X: "" },
        },
        {
          id: "infer",
          project,
          cluster: "ezmeral-gpu",
          inputs: { data: { node: "prep" } },
          partition: { by: "regex", input: "data", pattern: "^(\\d+)/(?<shard>\\w+)", group: "shard" },
          resources: { cpu: 2 },
          image: "registry.example.com:5000/team/infer:1.2",
          nodeSelector: { "nvidia.com/gpu.present": "true" },
          tolerations: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }, { operator: "Exists" }],
          noRetryExitCodes: [3, 42],
        },
      ],
    });
    expect(r.ok).toBe(true);
  });
});

describe("validateDag: Kubernetes placement fields", () => {
  it("names the field of a bad image, node selector, toleration or exit code", () => {
    expect(
      problemsOf({
        name: "d",
        nodes: [
          {
            id: "a",
            project,
            image: "Python:3.11",
            nodeSelector: { "bad key/x/y": "v", ok: "no spaces allowed" },
            tolerations: [{ key: "gpu", operator: "Exists", value: "x" }, { operator: "Equal" }, { key: "k", effect: "Sometimes" }],
            noRetryExitCodes: [0, 256],
            minSuccessRatio: 0,
          },
        ],
      }),
    ).toEqual([
      'nodes[0].image: expected an image reference such as "python:3.11-slim" or "registry.example.com/team/step:1.2@sha256:…"',
      'nodes[0].nodeSelector["bad key/x/y"]: invalid name "bad key/x/y": label keys look like `pool` or `example.com/zone`',
      "nodes[0].nodeSelector.ok: label values are at most 63 letters, digits, '-', '_' or '.'",
      'nodes[0].tolerations[0].value: a toleration with operator "Exists" has no value',
      'nodes[0].tolerations[1].operator: a toleration without a key must use operator "Exists"',
      'nodes[0].tolerations[2].effect: expected one of "NoSchedule", "PreferNoSchedule", "NoExecute", got "Sometimes"',
      "nodes[0].noRetryExitCodes[0]: expected an integer from 1 to 255",
      "nodes[0].noRetryExitCodes[1]: expected an integer from 1 to 255",
      "nodes[0].minSuccessRatio: expected a number above 0 and at most 1",
    ]);
    expect(problemsOf({ name: "d", nodes: [{ id: "a", project, minSuccessRatio: 1.5 }] })).toEqual(["nodes[0].minSuccessRatio: expected a number above 0 and at most 1"]);
  });
});

describe("validateDag: structural problems", () => {
  it("reports unknown fields with a hint", () => {
    expect(problemsOf({ name: "d", nodes: [{ id: "a", project, paralelism: 2 }], extra: 1 })).toEqual([
      'extra: unknown field "extra"',
      'nodes[0].paralelism: unknown field "paralelism" (did you mean "parallelism"?)',
    ]);
  });

  it("reports ranges and types in words", () => {
    expect(
      problemsOf({
        name: "d",
        nodes: [{ id: "a", project, parallelism: 100_001, retries: 1.5, timeoutSeconds: 0, resources: { gpu: -1, memory: "lots" } }],
      }),
    ).toEqual([
      "nodes[0].parallelism: expected an integer from 1 to 100000",
      'nodes[0].resources.memory: expected a Kubernetes quantity such as "512Mi" or "4Gi"',
      "nodes[0].resources.gpu: expected an integer ≥ 0",
      "nodes[0].retries: expected an integer from 0 to 10",
      "nodes[0].timeoutSeconds: expected a positive integer",
    ]);
  });

  it("checks names, ids, input names and env names", () => {
    expect(
      problemsOf({
        name: "My DAG",
        nodes: [{ id: "Prep_1", project, inputs: { "2x": { uri: "u" } }, env: { "A-B": "x" } }],
      }),
    ).toEqual([
      'name: a DAG name must be a DNS-1123 label: lowercase letters, digits and "-", starting and ending with a letter or digit',
      'nodes[0].id: a node id must be a DNS-1123 label: lowercase letters, digits and "-", starting and ending with a letter or digit',
      'nodes[0].inputs["2x"]: invalid name "2x": input names start with a letter or "_" and contain only letters, digits, "_" and "-"',
      'nodes[0].env.A-B: invalid name "A-B": environment variable names start with a letter or "_" and contain only letters, digits and "_"',
    ]);
    expect(problemsOf({ name: "a".repeat(64), nodes: [{ id: "a", project }] })).toEqual(["name: a DAG name must be at most 63 characters"]);
  });

  it("explains input references, cluster selectors and partitions", () => {
    expect(
      problemsOf({
        name: "d",
        nodes: [
          {
            id: "a",
            project: { uri: "." },
            cluster: {},
            inputs: { both: { node: "a", uri: "x" }, none: {}, typed: { node: 5 } },
            partition: { by: "shard", input: "both" },
          },
          { id: "b", project: { uri: "." }, cluster: 3, inputs: { x: { uri: "u" } }, partition: { by: "regex", input: "x", pattern: "(" } },
          { id: "c", project: { uri: "." }, inputs: { x: { uri: "u" } }, partition: { by: "hash", input: "x", key: { regex: "a" }, partitions: 4 } },
          { id: "d", project: { uri: "." }, inputs: { x: { uri: "u" } }, partition: { by: "regex", input: "x", pattern: "(a)", group: 2 } },
        ],
      }),
    ).toEqual([
      "nodes[0].cluster: a label selector needs at least one label",
      'nodes[0].partition.by: expected one of "none", "object", "directory", "broadcast", "hash", "regex", got "shard"',
      "nodes[0].inputs.both: expected exactly one of {node, path?}, {run, path?}, {uri} or {experiment, path?}",
      "nodes[0].inputs.none: expected exactly one of {node, path?}, {run, path?}, {uri} or {experiment, path?}",
      "nodes[0].inputs.typed.node: expected a string, got the number 5",
      'nodes[0].inputs.both: node "a" depends on itself',
      'nodes[1].cluster: expected a cluster name or a label selector such as {gpu: "true"}',
      "nodes[1].partition.pattern: invalid regular expression: /(/: Unterminated group",
      "nodes[2].partition.key.regex: expected exactly one capture group, found 0",
      "nodes[3].partition.group: the pattern has only 1 capture group(s)",
    ]);
  });

  it("partitions keyed on output metadata: accepted, and refused naming the field when malformed", () => {
    const node = (partition: unknown) => ({ name: "d", nodes: [{ id: "a", project: { uri: "." }, inputs: { x: { uri: "u" } }, partition }] });
    expect(validateDag(node({ by: "hash", input: "x", key: { metadata: "label" }, partitions: 4 })).ok).toBe(true);
    expect(validateDag(node({ by: "regex", input: "x", metadata: "label", pattern: "^(cat|dog)$" })).ok).toBe(true);
    expect(problemsOf(node({ by: "hash", input: "x", key: { metadata: "" }, partitions: 4 }))).toEqual(["nodes[0].partition.key.metadata: must not be empty"]);
    expect(problemsOf(node({ by: "hash", input: "x", key: { metadata: 3 }, partitions: 4 }))).toEqual([
      'nodes[0].partition.key: expected "path", "basename", "stem", {regex: "<pattern with one capture group>"} or {metadata: "<field>"}',
    ]);
    expect(problemsOf(node({ by: "hash", input: "x", key: { metadata: "a", regex: "(a)" }, partitions: 4 }))).toEqual([
      'nodes[0].partition.key: expected "path", "basename", "stem", {regex: "<pattern with one capture group>"} or {metadata: "<field>"}',
    ]);
    expect(problemsOf(node({ by: "regex", input: "x", metadata: "", pattern: "a" }))).toEqual(["nodes[0].partition.metadata: must not be empty"]);
  });

  it("reports missing fields, empty documents and node limits", () => {
    expect(problemsOf(null)).toEqual([": expected an object, got null"]);
    expect(problemsOf({})).toEqual(["name: missing required field", "nodes: missing required field"]);
    expect(problemsOf({ name: "d", nodes: [] })).toEqual(["nodes: a DAG needs at least one node"]);
    expect(problemsOf({ name: "d", nodes: [{ id: "a" }] })).toEqual(["nodes[0].project: missing required field"]);
    const tooMany = wideDag(MAX_NODES + 1);
    expect(problemsOf(tooMany)).toEqual([`nodes: at most 2000 nodes are allowed, got 2001`]);
    expect(problemsOf({ ...tooMany, name: "X", extra: 1 })).toEqual([
      'name: a DAG name must be a DNS-1123 label: lowercase letters, digits and "-", starting and ending with a letter or digit',
      'extra: unknown field "extra"',
      "nodes: at most 2000 nodes are allowed, got 2001",
    ]);
  });

  it("rejects a project subdirectory that escapes the repository", () => {
    expect(problemsOf({ name: "d", nodes: [{ id: "a", project: { uri: ".", subdirectory: "../x" } }] })).toEqual(['nodes[0].project.subdirectory: must be a relative path without ".."']);
  });
});

describe("validateDag: graph problems", () => {
  it("reports duplicate ids at the later node", () => {
    expect(
      problemsOf({
        name: "d",
        nodes: [
          { id: "a", project },
          { id: "prep", project },
          { id: "b", project },
          { id: "c", project },
          { id: "prep", project },
        ],
      }),
    ).toEqual(['nodes[4].id: duplicate id "prep" (also nodes[1])']);
  });

  it("reports unknown nodes in inputs and after", () => {
    expect(
      problemsOf({
        name: "d",
        nodes: [
          { id: "a", project },
          { id: "b", project },
          { id: "c", project },
          { id: "d", project, inputs: { images: { node: "prep" } }, after: ["a", "nope"] },
        ],
      }),
    ).toEqual(['nodes[3].inputs.images: unknown node "prep"', 'nodes[3].after[1]: unknown node "nope"']);
  });

  it("reports a node that depends on itself", () => {
    expect(problemsOf({ name: "d", nodes: [{ id: "a", project, after: ["a"] }] })).toEqual(['nodes[0].after[0]: node "a" depends on itself']);
  });

  it("reports each cycle once, naming its nodes in order, at its first node", () => {
    expect(
      problemsOf({
        name: "d",
        nodes: [
          { id: "root", project },
          { id: "a", project, inputs: { x: { node: "c" } }, after: ["root"] },
          { id: "b", project, inputs: { x: { node: "a" } } },
          { id: "c", project, after: ["b"] },
          { id: "p", project, after: ["q"] },
          { id: "q", project, after: ["p"] },
        ],
      }),
    ).toEqual(["nodes[1]: cycle: a → b → c → a", "nodes[4]: cycle: p → q → p"]);
  });

  it("reports a partition over an input that does not exist", () => {
    expect(
      problemsOf({
        name: "d",
        nodes: [
          { id: "a", project },
          { id: "b", project },
          {
            id: "c",
            project,
            inputs: { images: { node: "a" }, labels: { uri: "s3://x" } },
            partition: { by: "object", input: "imgs" },
          },
          { id: "e", project, partition: { by: "broadcast", input: "x" } },
        ],
      }),
    ).toEqual(['nodes[2].partition.input: no input named "imgs" (inputs: images, labels)', 'nodes[3].partition.input: no input named "x" (the node has no inputs)']);
  });

  it("still runs graph checks when other parts do not parse", () => {
    expect(
      problemsOf({
        name: "d",
        nodes: [
          { id: "a", project, resources: { cpu: true }, after: ["b"] },
          { id: "b", project: 7, after: ["a"], inputs: { x: { node: "ghost" } } },
        ],
      }),
    ).toEqual([
      'nodes[0].resources.cpu: expected a Kubernetes quantity such as "500m" or a number of cores',
      "nodes[0]: cycle: a → b → a",
      "nodes[1].project: expected an object, got the number 7",
      'nodes[1].inputs.x: unknown node "ghost"',
    ]);
  });
});

describe("limits and speed", () => {
  it("validates a 2,000-node DAG (its speed is in npm run bench)", () => {
    expect(validateDag(wideDag(MAX_NODES)).ok).toBe(true);
    const over = wideDag(MAX_NODES + 1);
    const r = validateDag(over);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems).toContainEqual({ path: "nodes", message: `at most ${MAX_NODES} nodes are allowed, got ${MAX_NODES + 1}` });
  });

  it("refuses documents over 1 MiB before parsing", () => {
    const text = JSON.stringify({ name: "d", description: "x".repeat(MAX_DAG_BYTES), nodes: [{ id: "a", project }] });
    const r = parseDagText(text, "json");
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems).toEqual([{ path: "", message: expect.stringMatching(/at most 1048576 bytes \(1 MiB\)/) }]);
  });

  it("counts bytes, not characters", () => {
    const description = "é".repeat(MAX_DAG_BYTES / 2); // 2 bytes each: over the limit with the rest
    const r = parseDagText(JSON.stringify({ name: "d", description, nodes: [{ id: "a", project }] }), "json");
    expect(r.ok).toBe(false);
  });
});
