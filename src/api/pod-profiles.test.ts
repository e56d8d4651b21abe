// Which AppArmor names in a pod are Lockstep's: only `lockstep.<object name>`, in the field and in the
// legacy annotation; the runtime's and the host's names are left alone (docs/adr/0027-apparmor-kernel-names.md).
// And the schema's bounds on hostile lists (docs/adr/0032).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { appArmorKernelName, isValidProfileObjectName } from "./labels.ts";
import {
  type AdmittedPod,
  AdmittedPodSchema,
  isLockstepAppArmorName,
  MAX_NODE_SELECTOR_TERMS,
  MAX_POD_CONTAINERS,
  MAX_POD_MAP_ENTRIES,
  MAX_TERM_REQUIREMENTS,
  podProfileSettings,
} from "./pod-profiles.ts";

function podWith(localhostProfile: string): AdmittedPod {
  return {
    metadata: {
      annotations: {
        "container.apparmor.security.beta.kubernetes.io/legacy": `localhost/${localhostProfile}`,
      },
    },
    spec: {
      securityContext: { appArmorProfile: { type: "Localhost", localhostProfile } },
      containers: [
        { name: "web", securityContext: { appArmorProfile: { type: "Localhost", localhostProfile } } },
      ],
    },
  };
}

describe("podProfileSettings: AppArmor", () => {
  it("finds the AppArmorProfile of a lockstep.<name> in the field, at pod and container level, and in the annotation", () => {
    const settings = podProfileSettings(podWith("lockstep.web"));
    expect(settings.invalid).toEqual([]);
    expect(settings.references.map((r) => [r.kind, r.name, r.field])).toEqual([
      ["apparmor", "web", "spec.securityContext.appArmorProfile.localhostProfile"],
      ["apparmor", "web", "spec.containers[0].securityContext.appArmorProfile.localhostProfile"],
      ["apparmor", "web", 'metadata.annotations["container.apparmor.security.beta.kubernetes.io/legacy"]'],
    ]);
  });

  it.each([
    "cri-containerd.apparmor.d",
    "docker-default",
    "crio-default",
    "unconfined",
    "web",
    "Lockstep.web",
    "lockstep",
    "lockstep/web",
    ":lockstep:web",
  ])("leaves %s alone: not a Lockstep name", (name) => {
    expect(isLockstepAppArmorName(name)).toBe(false);
    expect(podProfileSettings(podWith(name))).toEqual({ references: [], invalid: [] });
  });

  it.each([
    "lockstep.",
    "lockstep.Web",
    "lockstep.web/x",
    "lockstep.-web",
    "lockstep.web//hat",
    `lockstep.${"a".repeat(254)}`,
  ])("refuses %s: in Lockstep's name space, but no object can have it", (name) => {
    const settings = podProfileSettings(podWith(name));
    expect(settings.references).toEqual([]);
    expect(settings.invalid).toHaveLength(3);
    expect(settings.invalid[0]?.message).toBe(
      `${JSON.stringify(name)} names no AppArmorProfile: after "lockstep." must come the object's name (lower-case letters, digits, "-" and ".")`,
    );
  });

  it("ignores Localhost without a name, and RuntimeDefault", () => {
    const pod: AdmittedPod = {
      spec: {
        securityContext: { appArmorProfile: { type: "RuntimeDefault" } },
        containers: [{ name: "c", securityContext: { appArmorProfile: { type: "Localhost" } } }],
      },
    };
    expect(podProfileSettings(pod)).toEqual({ references: [], invalid: [] });
  });

  it("reads back every object's kernel name as that object", () => {
    const objectName = fc.stringMatching(/^[a-z0-9][a-z0-9.-]{0,40}$/).filter(isValidProfileObjectName);
    fc.assert(
      fc.property(objectName, (name) => {
        const refs = podProfileSettings(podWith(appArmorKernelName(name))).references;
        expect(refs.map((r) => r.name)).toEqual([name, name, name]);
      }),
    );
  });
});

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
