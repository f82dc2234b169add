import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { buildJobName, buildLabels, jobName, labelValue, MAX_JOB_NAME, ownSelector } from "./names";

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;
const nodeId = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);

describe("Kubernetes names", () => {
  it("a Job name is a valid DNS label short enough for its pods' hostnames, and stable per (node run, attempt)", () => {
    fc.assert(
      fc.property(nodeId, fc.string({ minLength: 1, maxLength: 200 }), fc.integer({ min: 1, max: 100 }), (node, nodeRunId, attempt) => {
        const name = jobName(node, nodeRunId, attempt);
        expect(name).toMatch(DNS_LABEL);
        expect(name.length).toBeLessThanOrEqual(MAX_JOB_NAME);
        expect(`${name}-99999`.length).toBeLessThanOrEqual(63);
        expect(jobName(node, nodeRunId, attempt)).toBe(name);
        expect(jobName(node, nodeRunId, attempt + 1)).not.toBe(name);
      }),
    );
  });

  it("a label value keeps a short id as it is and cuts a long one to a valid, distinct value", () => {
    expect(labelValue("01m8pxdhn03td7523exa")).toBe("01m8pxdhn03td7523exa");
    const long = `${"x".repeat(70)}-a`;
    expect(labelValue(long)).toMatch(LABEL_VALUE);
    expect(labelValue(long)).not.toBe(labelValue(`${"x".repeat(70)}-b`));
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (v) => {
        expect(labelValue(v)).toMatch(LABEL_VALUE);
      }),
    );
  });

  it("an image's build Job: one DNS-label name per image, its labels left out of the attempts' selector", () => {
    const ref = "registry.example:5000/mlflow-parallels/project-sklearn-elasticnet-wine:0123456789abcdef0123456789abcdef";
    expect(buildJobName(ref)).toMatch(/^build-project-sklearn-elasticnet-wine-[0-9a-f]{16}$/);
    expect(buildJobName(ref)).toBe(buildJobName(ref));
    expect(buildJobName(ref.replace(/f$/, "e"))).not.toBe(buildJobName(ref));
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 300 }), (r) => {
        const n = buildJobName(r);
        expect(n).toMatch(DNS_LABEL);
        expect(`${n}-xxxxx`.length).toBeLessThanOrEqual(63);
      }),
    );
    expect(Object.values(buildLabels("c1", ref)).every((v) => LABEL_VALUE.test(v))).toBe(true);
    expect(ownSelector("c1")).toBe("app.kubernetes.io/managed-by=parallels-agent,parallels.io/cluster=c1,!parallels.io/image-build");
  });
});
