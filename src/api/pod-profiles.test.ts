import { describe, expect, it } from "vitest";
import {
  AdmittedPodSchema,
  MAX_NODE_SELECTOR_TERMS,
  MAX_POD_CONTAINERS,
  MAX_POD_MAP_ENTRIES,
  MAX_TERM_REQUIREMENTS,
} from "./pod-profiles.ts";

const issuesOf = (pod: unknown) => AdmittedPodSchema.safeParse(pod).error?.issues ?? [];
const required = (nodeSelectorTerms: unknown) => ({
  containers: [],
  affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms } } },
});

describe("AdmittedPodSchema on hostile lists (the work of a review is bounded)", () => {
  it("reports only the first bad element of a long list, not one issue per element", () => {
    // 300,000 bad containers made 300,000 issues and a 22 MB message before.
    const many = Array.from({ length: 300_000 }, () => 1);
    for (const list of ["containers", "initContainers", "ephemeralContainers"]) {
      const issues = issuesOf({ spec: { containers: [], [list]: many.slice(0, MAX_POD_CONTAINERS) } });
      expect(issues).toHaveLength(1);
      expect(issues[0]?.path).toEqual(["spec", list, 0]);
    }
    const values = issuesOf({
      spec: required([{ matchExpressions: [{ key: "k", operator: "In", values: ["a", ...many] }] }]),
    });
    expect(values).toHaveLength(1);
    expect(values[0]?.path.slice(-2)).toEqual(["values", 1]);
  });

  it("reports one issue for a label or annotation map full of non-strings, and refuses one too large to read", async () => {
    const numbers = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]));
    for (const field of ["labels", "annotations"]) {
      const issues = issuesOf({
        metadata: { [field]: numbers(MAX_POD_MAP_ENTRIES) },
        spec: { containers: [] },
      });
      expect(issues).toHaveLength(1);
      expect(issues[0]?.path).toEqual(["metadata", field, "k0"]);
      const tooMany = issuesOf({
        metadata: { [field]: numbers(MAX_POD_MAP_ENTRIES + 1) },
        spec: { containers: [] },
      });
      expect(tooMany.map((i) => [i.path, i.message])).toEqual([
        [["metadata", field], `must have at most ${MAX_POD_MAP_ENTRIES} entries`],
      ]);
      expect(issuesOf({ metadata: { [field]: ["a"] }, spec: { containers: [] } })[0]?.path).toEqual([
        "metadata",
        field,
      ]);
    }
    expect(issuesOf({ metadata: { labels: { a: "b", __proto__: "c" } }, spec: { containers: [] } })).toEqual(
      [],
    );
  });

  it("reports nested bad elements at their full path, stopping at the first in each list", () => {
    const issues = issuesOf({
      spec: {
        containers: [{ name: "ok" }, { name: 7, securityContext: { seccompProfile: { type: 1 } } }, 5],
      },
    });
    expect(issues.map((i) => i.path)).toEqual([
      ["spec", "containers", 1, "name"],
      ["spec", "containers", 1, "securityContext", "seccompProfile", "type"],
    ]);
  });

  it("refuses more containers, terms or requirements than any real pod has, without reading them", () => {
    const container = { name: "c" };
    const tooMany = (max: number, item: unknown) => Array.from({ length: max + 1 }, () => item);
    const cases: [unknown, (string | number)[]][] = [
      [{ containers: tooMany(MAX_POD_CONTAINERS, container) }, ["spec", "containers"]],
      [
        { containers: [], initContainers: tooMany(MAX_POD_CONTAINERS, container) },
        ["spec", "initContainers"],
      ],
      [required(tooMany(MAX_NODE_SELECTOR_TERMS, {})), ["spec", "affinity", "nodeAffinity"]],
      [
        required([{ matchFields: tooMany(MAX_TERM_REQUIREMENTS, { key: "k", operator: "Exists" }) }]),
        ["spec", "affinity", "nodeAffinity"],
      ],
    ];
    for (const [spec, path] of cases) {
      const issues = issuesOf({ spec });
      expect(issues).toHaveLength(1);
      expect(issues[0]?.path.slice(0, path.length)).toEqual(path);
      expect(issues[0]?.message).toMatch(/at most \d+ items/);
    }
    // At the limit it parses.
    expect(issuesOf({ spec: { containers: tooMany(MAX_POD_CONTAINERS - 1, container) } })).toEqual([]);
  });
});
