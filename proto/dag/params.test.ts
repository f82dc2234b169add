import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { paramReferences, resolveNodeParams, substituteParams, validateDag, type Problem } from "./index";

const project = { uri: "./step" };

describe("DAG params in node values", () => {
  it("finds references, not escaped ones", () => {
    expect(paramReferences("--lr ${params.lr} and ${params.lang}")).toEqual(["lr", "lang"]);
    expect(paramReferences("$${params.lr} ${HOME} {params.x}")).toEqual([]);
    expect(substituteParams("$${HOME} ${HOME} $$", { HOME: "x" })).toBe("$${HOME} ${HOME} $$"); // only params are touched
  });

  it("keeps the param's type for a whole-value reference and writes Python's str() inside text", () => {
    const params = { lr: 0.01, on: true, lang: "fr", n: 3, small: 1e-7 };
    expect(substituteParams("${params.lr}", params)).toBe(0.01);
    expect(substituteParams("${params.on}", params)).toBe(true);
    expect(substituteParams("lang=${params.lang}, on=${params.on}, n=${params.n}", params)).toBe("lang=fr, on=True, n=3");
    expect(substituteParams("${params.lr}/${params.small}", params)).toBe("0.01/1e-07");
    expect(substituteParams("cost $${params.lr} stays", params)).toBe("cost ${params.lr} stays");
    expect(substituteParams("$${params.lr}", params)).toBe("${params.lr}");
    expect(substituteParams("${params.missing}", params)).toBe("${params.missing}");
  });

  it("resolves a node's parameters and env (env values stay strings); a node without references is returned as is", () => {
    const r = validateDag({
      name: "d",
      params: { lang: "en", top: 20, debug: false },
      nodes: [
        { id: "a", project, parameters: { top: "${params.top}", label: "top-${params.top}", fixed: 1 }, env: { LANG_CODE: "${params.lang}", DEBUG: "${params.debug}" } },
        { id: "b", project, parameters: { x: "y" } },
      ],
    });
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    const [a, b] = r.dag.nodes;
    const resolved = resolveNodeParams(a!, { lang: "de", top: 5, debug: true });
    expect(resolved.parameters).toEqual({ top: 5, label: "top-5", fixed: 1 });
    expect(resolved.env).toEqual({ LANG_CODE: "de", DEBUG: "True" });
    expect(a!.parameters).toEqual({ top: "${params.top}", label: "top-${params.top}", fixed: 1 }); // not mutated
    expect(resolveNodeParams(b!, { lang: "de" })).toBe(b);
  });

  it("reports references to undeclared or empty params where they are", () => {
    const r = validateDag({
      name: "d",
      params: { lang: "en", top: 20 },
      nodes: [
        { id: "a", project, parameters: { top: "${params.topp}" } },
        { id: "b", project, env: { X: "${params.}" }, parameters: { "odd key": "$${params.nope} ${params.lang}" } },
      ],
    });
    expect(r.ok).toBe(false);
    expect((r as { problems: Problem[] }).problems.map((p) => `${p.path}: ${p.message}`)).toEqual([
      'nodes[0].parameters.top: unknown DAG param "topp" in ${params.topp} (declared: lang, top)',
      "nodes[1].env.X: empty param name in ${params.}",
    ]);
    const none = validateDag({ name: "d", nodes: [{ id: "a", project, parameters: { top: "${params.top}" } }] });
    expect(none.ok ? [] : none.problems.map((p) => p.message)).toEqual(['unknown DAG param "top" in ${params.top} (the DAG declares no params)']);
  });

  it("any text without `${params.` comes back unchanged; an escaped reference comes back as written, once unescaped", () => {
    fc.assert(
      fc.property(fc.string(), fc.string({ unit: fc.constantFrom("a", "{", "}", ".", "p", "-") }), (text, name) => {
        const plain = text.replaceAll("$", "");
        expect(substituteParams(plain, { x: 1 })).toBe(plain);
        const escaped = `$\${params.${name.replaceAll("}", "")}}`;
        expect(substituteParams(escaped, { [name]: 1 })).toBe(escaped.slice(1));
      }),
    );
  });
});
