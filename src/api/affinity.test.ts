import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { applyPatch } from "../../test/unit/json-patch.ts";
import {
  type AffinityPatch,
  affinityGuards,
  IN_USE_LABEL_VALUE,
  isEmptyTerm,
  type JsonPatchOperation,
  jsonPointerToken,
  requireProfilesPatch,
} from "./affinity.ts";
import { APPARMOR_LABEL, type ProfileKind, SYNCED_REVISION_LABEL } from "./constants.ts";
import { failedLabelKey, profileLabelKey, selectorSyncedLabelKey } from "./labels.ts";
import { nodeHasProfile, type ProfilePlacement, profileRequirements } from "./node-profiles.ts";
import type { AdmittedPod, NodeSelectorTerm } from "./pod-profiles.ts";

const labelKey = fc.constantFrom(
  "seccomp.lockstep.dev/web",
  "seccomp.lockstep.dev/strict",
  "apparmor.lockstep.dev/web",
  "apparmor.lockstep.dev/a_0123456789ab",
);
/** An in-use label a user wrote by hand for a profile the pod does not use. */
const strayLockstepKey = fc.constantFrom("seccomp.lockstep.dev/unrelated", "apparmor.lockstep.dev/other");
const otherKey = fc.constantFrom("kubernetes.io/hostname", "pool", "topology.kubernetes.io/zone");
const expression = fc.record({
  key: fc.oneof(otherKey, labelKey),
  operator: fc.constantFrom("In", "NotIn", "Exists", "DoesNotExist"),
  values: fc.option(fc.array(fc.string({ minLength: 1, maxLength: 5 }), { maxLength: 2 }), {
    nil: undefined,
  }),
});
// Terms with only matchFields, with empty lists, with nothing at all (matches no node), and mixes.
const term: fc.Arbitrary<NodeSelectorTerm> = fc.record(
  {
    matchExpressions: fc.array(expression, { maxLength: 3 }),
    matchFields: fc.array(
      fc.record({
        key: fc.constant("metadata.name"),
        operator: fc.constant("In"),
        values: fc.array(fc.constantFrom("n1", "n2"), { minLength: 1, maxLength: 2 }),
      }),
      { maxLength: 1 },
    ),
  },
  { requiredKeys: [] },
);
/** A pod with more than the webhook reads: what it does not read must come through untouched. */
type FullerPod = AdmittedPod & {
  spec: {
    nodeSelector?: Record<string, string>;
    tolerations?: unknown[];
    affinity?: {
      nodeAffinity?: { preferredDuringSchedulingIgnoredDuringExecution?: unknown };
      podAntiAffinity?: unknown;
    };
  };
};
const pod: fc.Arbitrary<FullerPod> = fc.record({
  metadata: fc.record(
    {
      name: fc.constant("p"),
      labels: fc.dictionary(fc.oneof(otherKey, labelKey, strayLockstepKey), fc.constantFrom("a", "true")),
    },
    { requiredKeys: ["name"] },
  ),
  spec: fc.record(
    {
      containers: fc.constant([{ name: "c", image: "busybox" }]),
      nodeSelector: fc.dictionary(otherKey, fc.constantFrom("x", "y")),
      tolerations: fc.array(fc.record({ key: otherKey, operator: fc.constant("Exists") }), { maxLength: 2 }),
      affinity: fc.record(
        {
          nodeAffinity: fc.record(
            {
              requiredDuringSchedulingIgnoredDuringExecution: fc.record({
                nodeSelectorTerms: fc.array(term, { maxLength: 3 }),
              }),
              preferredDuringSchedulingIgnoredDuringExecution: fc.array(
                fc.record({ weight: fc.integer({ min: 1, max: 100 }), preference: term }),
                { maxLength: 2 },
              ),
            },
            { requiredKeys: [] },
          ),
          podAntiAffinity: fc.constant({}),
        },
        { requiredKeys: [] },
      ),
    },
    { requiredKeys: ["containers"] },
  ),
});

const profile: fc.Arbitrary<ProfilePlacement> = fc.record({
  kind: fc.constantFrom<ProfileKind>("seccomp", "apparmor"),
  name: fc.constantFrom("web", "strict"),
  revision: fc.constantFrom("5", "9", "12"),
  nodeSelector: fc.option(
    fc.dictionary(fc.constantFrom("pool", "zone"), fc.constantFrom("a", "b"), { maxKeys: 1 }),
    {
      nil: undefined,
    },
  ),
  disabled: fc.boolean(),
});
const profiles = fc.uniqueArray(profile, {
  minLength: 1,
  maxLength: 3,
  selector: (p) => `${p.kind}/${p.name}`,
});
const inUseKeys = (ps: readonly ProfilePlacement[]) => ps.map((p) => profileLabelKey(p.kind, p.name));

/**
 * A node: an agent's labels (or none), user labels, and per-profile labels as the agents before ADR
 * 0024 wrote them (never released), which hold nothing.
 */
const node = fc.record({
  name: fc.constantFrom("n1", "n2", "n3"),
  labels: fc
    .tuple(
      fc.dictionary(
        fc.constantFrom(...Object.values(SYNCED_REVISION_LABEL)),
        fc.constantFrom("4", "5", "9", "12", "x"),
      ),
      fc.dictionary(
        fc
          .constantFrom("web", "strict")
          .chain((n) => fc.constantFrom(failedLabelKey("seccomp", n), failedLabelKey("apparmor", n))),
        fc.constantFrom("NameTaken"),
      ),
      fc.dictionary(fc.constantFrom("pool", "zone"), fc.constantFrom("a", "b")),
      fc.dictionary(
        fc.constantFrom(selectorSyncedLabelKey("pool"), selectorSyncedLabelKey("zone")),
        fc.constantFrom("a", "b"),
      ),
      fc.dictionary(labelKey, fc.constantFrom("v1", "v2")),
      fc.dictionary(fc.constantFrom(APPARMOR_LABEL), fc.constantFrom("enabled", "unavailable")),
      fc.dictionary(otherKey, fc.constantFrom("x", "y", "a")),
    )
    .map((parts) => Object.assign({}, ...parts) as Record<string, string>),
});
type TestNode = { name: string; labels: Record<string, string> };

/** k8s.io/component-helpers nodeaffinity, as the scheduler evaluates a required term. */
function requirementMatches(
  e: { key: string; operator: string; values?: string[] },
  value: string | undefined,
) {
  const values = e.values ?? [];
  switch (e.operator) {
    case "In":
      return value !== undefined && values.includes(value);
    case "NotIn":
      return value === undefined || !values.includes(value);
    case "Exists":
      return value !== undefined;
    case "DoesNotExist":
      return value === undefined;
    case "Gt":
    case "Lt": {
      if (value === undefined || !/^-?[0-9]+$/.test(value) || !/^-?[0-9]+$/.test(values[0] ?? ""))
        return false;
      const [a, b] = [BigInt(value), BigInt(values[0] ?? "0")];
      return e.operator === "Gt" ? a > b : a < b;
    }
    default:
      return false;
  }
}

function requiredAffinityMatches(p: AdmittedPod, n: TestNode): boolean {
  const required = p.spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  if (required === undefined) return true;
  return (required.nodeSelectorTerms ?? []).some(
    (t) =>
      !isEmptyTerm(t) &&
      (t.matchExpressions ?? []).every((e) => requirementMatches(e, n.labels[e.key])) &&
      (t.matchFields ?? []).every((e) =>
        requirementMatches(e, e.key === "metadata.name" ? n.name : undefined),
      ),
  );
}

/** The operations, failing the test when the patch was refused. */
function operations(patch: AffinityPatch): JsonPatchOperation[] {
  if ("refused" in patch) throw new Error(`unexpectedly refused: ${patch.refused}`);
  return patch.operations;
}

const guardOf = (ps: readonly ProfilePlacement[]) => profileRequirements(ps);
const patchFor = (p: AdmittedPod, ps: readonly ProfilePlacement[]) =>
  requireProfilesPatch(p, inUseKeys(ps), guardOf(ps));

const requiredTerms = (p: FullerPod) =>
  p.spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
const hasEmptyTermList = (p: FullerPod) =>
  p.spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution !== undefined &&
  (requiredTerms(p) ?? []).length === 0;

describe("requireProfilesPatch", () => {
  it("lets the scheduler place the pod exactly where its own affinity allows and nodeHasProfile holds for every profile", () => {
    fc.assert(
      fc.property(pod, profiles, node, (original, needed, n) => {
        fc.pre(!hasEmptyTermList(original));
        const patched = applyPatch(original, operations(patchFor(original, needed)));
        const allowed =
          requiredAffinityMatches(original, n) && needed.every((p) => nodeHasProfile(p, n.labels));
        const matches = requiredAffinityMatches(patched, n);
        // Never a node lacking a profile, and every node that has them.
        expect(matches).toBe(allowed);
      }),
      { numRuns: 3000 },
    );
  });

  it("keeps every constraint the pod had and sets exactly the in-use labels", () => {
    fc.assert(
      fc.property(pod, profiles, (original, needed) => {
        fc.pre(!hasEmptyTermList(original));
        const patched = applyPatch(original, operations(patchFor(original, needed)));
        const lockstepLabels = Object.keys(patched.metadata?.labels ?? {}).filter(
          (k) => k.startsWith("seccomp.lockstep.dev/") || k.startsWith("apparmor.lockstep.dev/"),
        );
        expect(lockstepLabels.sort()).toEqual([...new Set(inUseKeys(needed))].sort());
        for (const k of inUseKeys(needed)) expect(patched.metadata?.labels?.[k]).toBe(IN_USE_LABEL_VALUE);
        // Each original term lives on in its place, with all its expressions and fields: the
        // affinity gains requirements, never a term (one term per term, one for a pod without any).
        const before = requiredTerms(original) ?? [];
        const terms = requiredTerms(patched) ?? [];
        expect(terms).toHaveLength(Math.max(before.length, 1));
        before.forEach((t, i) => {
          expect(terms[i]?.matchFields).toEqual(t.matchFields);
          for (const e of t.matchExpressions ?? []) expect(terms[i]?.matchExpressions).toContainEqual(e);
        });
        expect(patched.spec.nodeSelector).toEqual(original.spec.nodeSelector);
        expect(patched.spec.tolerations).toEqual(original.spec.tolerations);
        expect(patched.spec.affinity?.nodeAffinity?.preferredDuringSchedulingIgnoredDuringExecution).toEqual(
          original.spec.affinity?.nodeAffinity?.preferredDuringSchedulingIgnoredDuringExecution,
        );
        expect(patched.spec.affinity?.podAntiAffinity).toEqual(original.spec.affinity?.podAntiAffinity);
        for (const [k, v] of Object.entries(original.metadata?.labels ?? {}))
          if (!k.includes("lockstep.dev/")) expect(patched.metadata?.labels?.[k]).toBe(v);
      }),
      { numRuns: 1000 },
    );
  });

  it("refuses a required node affinity without terms, as the API server would", () => {
    fc.assert(
      fc.property(pod, profiles, (original, needed) => {
        fc.pre(hasEmptyTermList(original));
        expect(patchFor(original, needed)).toEqual({
          refused: expect.stringMatching(
            /^spec\.affinity\.nodeAffinity\.requiredDuringSchedulingIgnoredDuringExecution\.nodeSelectorTerms: must have at least one term/,
          ),
        });
      }),
      { numRuns: 200 },
    );
  });

  const web: ProfilePlacement = {
    kind: "seccomp",
    name: "web",
    revision: "7",
    disabled: false,
  };

  it("leaves an empty term empty, and adds the requirements to a term in place of it", () => {
    const base: AdmittedPod = {
      spec: {
        containers: [],
        affinity: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [
                { matchFields: [{ key: "metadata.name", operator: "In", values: ["n1"] }] },
                {},
              ],
            },
          },
        },
      },
    };
    const fields = [{ key: "metadata.name", operator: "In", values: ["n1"] }];
    expect(operations(patchFor(base, [web]))).toEqual([
      { op: "add", path: "/metadata/labels", value: { "seccomp.lockstep.dev/web": "true" } },
      {
        op: "replace",
        path: "/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms",
        value: [
          {
            matchFields: fields,
            matchExpressions: [
              { key: "lockstep.dev/seccomp-revision", operator: "Gt", values: ["6"] },
              { key: "failed.seccomp.lockstep.dev/web", operator: "DoesNotExist" },
            ],
          },
          {},
        ],
      },
    ]);
  });

  it("requires the nodeSelector, the agent's record of it, and AppArmor", () => {
    const aa: ProfilePlacement = {
      kind: "apparmor",
      name: "aa",
      revision: "40",
      nodeSelector: { pool: "web" },
      disabled: false,
    };
    expect(profileRequirements([web, aa])).toEqual([
      { key: "lockstep.dev/seccomp-revision", operator: "Gt", values: ["6"] },
      { key: "lockstep.dev/apparmor-revision", operator: "Gt", values: ["39"] },
      { key: "failed.seccomp.lockstep.dev/web", operator: "DoesNotExist" },
      { key: "failed.apparmor.lockstep.dev/aa", operator: "DoesNotExist" },
      { key: "selector.lockstep.dev/pool", operator: "In", values: ["web"] },
      { key: "pool", operator: "In", values: ["web"] },
      { key: "lockstep.dev/apparmor", operator: "In", values: ["enabled"] },
    ]);
  });

  it("drops in-use labels a pod without profiles carries", () => {
    const stray: AdmittedPod = {
      metadata: { labels: { app: "x", "seccomp.lockstep.dev/web": "true" } },
      spec: { containers: [] },
    };
    expect(operations(requireProfilesPatch(stray, [], profileRequirements([])))).toEqual([
      { op: "remove", path: "/metadata/labels/seccomp.lockstep.dev~1web" },
    ]);
  });

  it("is idempotent: patching the patched pod changes nothing", () => {
    fc.assert(
      fc.property(pod, profiles, (original, needed) => {
        fc.pre(!hasEmptyTermList(original));
        const once = applyPatch(original, operations(patchFor(original, needed)));
        expect(operations(patchFor(once, needed))).toEqual([]);
      }),
      { numRuns: 500 },
    );
  });

  it("adds the requirements as one term when the pod has no required node affinity", () => {
    const ops = operations(patchFor({ spec: { containers: [] } }, [web]));
    expect(ops).toContainEqual({
      op: "add",
      path: "/spec/affinity",
      value: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [
              {
                matchExpressions: [
                  { key: "lockstep.dev/seccomp-revision", operator: "Gt", values: ["6"] },
                  { key: "failed.seccomp.lockstep.dev/web", operator: "DoesNotExist" },
                ],
              },
            ],
          },
        },
      },
    });
  });

  it("escapes label keys in JSON pointers", () => {
    expect(jsonPointerToken("seccomp.lockstep.dev/a~b")).toBe("seccomp.lockstep.dev~1a~0b");
  });
});

describe("affinityGuards (kubectl debug on a pod not yet scheduled)", () => {
  it("holds only for an affinity that keeps the pod on nodes holding the profile, and for every profile the webhook guarded", () => {
    fc.assert(
      fc.property(pod, profiles, profile, node, fc.boolean(), (original, guarded, p, n, patch) => {
        fc.pre(!hasEmptyTermList(original));
        const admitted = patch ? applyPatch(original, operations(patchFor(original, guarded))) : original;
        if (affinityGuards(admitted, guardOf([p])) && requiredAffinityMatches(admitted, n))
          expect(nodeHasProfile(p, n.labels)).toBe(true);
        if (patch) for (const g of guarded) expect(affinityGuards(admitted, guardOf([g]))).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });
});
