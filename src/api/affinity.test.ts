import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type AffinityPatch,
  IN_USE_LABEL_VALUE,
  isEmptyTerm,
  type JsonPatchOperation,
  jsonPointerToken,
  requireProfilesPatch,
} from "./affinity.ts";
import type { AdmittedPod, NodeSelectorTerm } from "./pod-profiles.ts";

/** A minimal RFC 6902 applier for the operations the webhook emits (what the API server does with them). */
function applyPatch<T>(doc: T, ops: readonly JsonPatchOperation[]): T {
  const copy = structuredClone(doc) as Record<string, unknown>;
  for (const op of ops) {
    const tokens = op.path
      .split("/")
      .slice(1)
      .map((t) => t.replace(/~1/g, "/").replace(/~0/g, "~"));
    const last = tokens.pop() as string;
    let parent: Record<string, unknown> | unknown[] = copy;
    for (const t of tokens) {
      const next = (parent as Record<string, unknown>)[t];
      if (next === undefined || next === null) throw new Error(`path ${op.path}: ${t} does not exist`);
      parent = next as Record<string, unknown>;
    }
    if (op.op === "remove") {
      if (Array.isArray(parent) || !(last in parent)) throw new Error(`remove of missing ${op.path}`);
      delete parent[last];
    } else if (Array.isArray(parent)) {
      if (last === "-") parent.push(op.value);
      else parent.splice(Number(last), op.op === "add" ? 0 : 1, op.value);
    } else {
      if (op.op === "replace" && !(last in parent)) throw new Error(`replace of missing ${op.path}`);
      parent[last] = op.value;
    }
  }
  return copy as T;
}

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
const keys = fc.uniqueArray(labelKey, { minLength: 1, maxLength: 3 });

/** The operations, failing the test when the patch was refused. */
function operations(patch: AffinityPatch): JsonPatchOperation[] {
  if ("refused" in patch) throw new Error(`unexpectedly refused: ${patch.refused}`);
  return patch.operations;
}

const requiredTerms = (p: FullerPod) =>
  p.spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
const hasEmptyTermList = (p: FullerPod) =>
  p.spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution !== undefined &&
  (requiredTerms(p) ?? []).length === 0;

describe("requireProfilesPatch", () => {
  it("puts every requirement into every non-empty required term, keeps every constraint, and sets exactly the in-use labels", () => {
    fc.assert(
      fc.property(pod, keys, (original, needed) => {
        fc.pre(!hasEmptyTermList(original));
        const patched = applyPatch(original, operations(requireProfilesPatch(original, needed)));
        const terms = requiredTerms(patched) ?? [];
        const originalTerms = requiredTerms(original) ?? [];
        expect(terms.length).toBe(Math.max(originalTerms.length, 1));
        terms.forEach((t, i) => {
          const before = originalTerms[i];
          // An empty term matches no node; it must stay one.
          if (before !== undefined && isEmptyTerm(before)) expect(t).toEqual(before);
          else
            for (const k of needed)
              expect(t.matchExpressions?.some((e) => e.key === k && e.operator === "Exists")).toBe(true);
        });
        const lockstepLabels = Object.keys(patched.metadata?.labels ?? {}).filter(
          (k) => k.startsWith("seccomp.lockstep.dev/") || k.startsWith("apparmor.lockstep.dev/"),
        );
        expect(lockstepLabels.sort()).toEqual([...needed].sort());
        for (const k of needed) expect(patched.metadata?.labels?.[k]).toBe(IN_USE_LABEL_VALUE);
        // Nothing the pod had is lost: each original term's expressions and fields are still in its term.
        originalTerms.forEach((t, i) => {
          for (const e of t.matchExpressions ?? []) expect(terms[i]?.matchExpressions).toContainEqual(e);
          expect(terms[i]?.matchFields).toEqual(t.matchFields);
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
      fc.property(pod, keys, (original, needed) => {
        fc.pre(hasEmptyTermList(original));
        expect(requireProfilesPatch(original, needed)).toEqual({
          refused: expect.stringMatching(
            /^spec\.affinity\.nodeAffinity\.requiredDuringSchedulingIgnoredDuringExecution\.nodeSelectorTerms: must have at least one term/,
          ),
        });
      }),
      { numRuns: 200 },
    );
  });

  it("leaves a term with only matchFields its fields, and an empty term empty", () => {
    const base: AdmittedPod = {
      spec: {
        containers: [],
        affinity: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [
                { matchFields: [{ key: "metadata.name", operator: "In", values: ["n1"] }] },
                {},
                { matchExpressions: [], matchFields: [] },
              ],
            },
          },
        },
      },
    };
    expect(operations(requireProfilesPatch(base, ["seccomp.lockstep.dev/web"]))).toEqual([
      { op: "add", path: "/metadata/labels", value: { "seccomp.lockstep.dev/web": "true" } },
      {
        op: "add",
        path: "/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms/0/matchExpressions",
        value: [{ key: "seccomp.lockstep.dev/web", operator: "Exists" }],
      },
    ]);
  });

  it("drops in-use labels a pod without profiles carries", () => {
    const stray: AdmittedPod = {
      metadata: { labels: { app: "x", "seccomp.lockstep.dev/web": "true" } },
      spec: { containers: [] },
    };
    expect(operations(requireProfilesPatch(stray, []))).toEqual([
      { op: "remove", path: "/metadata/labels/seccomp.lockstep.dev~1web" },
    ]);
  });

  it("is idempotent: patching the patched pod changes nothing", () => {
    fc.assert(
      fc.property(pod, keys, (original, needed) => {
        fc.pre(!hasEmptyTermList(original));
        const once = applyPatch(original, operations(requireProfilesPatch(original, needed)));
        expect(operations(requireProfilesPatch(once, needed))).toEqual([]);
      }),
      { numRuns: 500 },
    );
  });

  it("adds one new term when the pod has no required node affinity", () => {
    const ops = operations(requireProfilesPatch({ spec: { containers: [] } }, ["seccomp.lockstep.dev/web"]));
    expect(ops).toContainEqual({
      op: "add",
      path: "/spec/affinity",
      value: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [
              { matchExpressions: [{ key: "seccomp.lockstep.dev/web", operator: "Exists" }] },
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
