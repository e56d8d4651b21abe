import type { V1NodeSelectorTerm, V1Pod } from "@kubernetes/client-node";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  IN_USE_LABEL_VALUE,
  type JsonPatchOperation,
  jsonPointerToken,
  requireProfilesPatch,
} from "./affinity.ts";

/** A minimal RFC 6902 applier for the two operations the webhook emits (what the API server does with them). */
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
    if (Array.isArray(parent)) {
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
const otherKey = fc.constantFrom("kubernetes.io/hostname", "pool", "topology.kubernetes.io/zone");
const expression = fc.record({
  key: fc.oneof(otherKey, labelKey),
  operator: fc.constantFrom("In", "NotIn", "Exists", "DoesNotExist"),
  values: fc.option(fc.array(fc.string({ minLength: 1, maxLength: 5 }), { maxLength: 2 }), {
    nil: undefined,
  }),
});
const term: fc.Arbitrary<V1NodeSelectorTerm> = fc.record(
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
const pod: fc.Arbitrary<V1Pod> = fc.record({
  metadata: fc.record(
    {
      name: fc.constant("p"),
      labels: fc.dictionary(fc.oneof(otherKey, labelKey), fc.constantFrom("a", "true")),
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

describe("requireProfilesPatch", () => {
  it("puts every requirement into every required term, keeps every constraint, and labels the pod", () => {
    fc.assert(
      fc.property(pod, keys, (original, needed) => {
        const patched = applyPatch(original, requireProfilesPatch(original, needed));
        const terms =
          patched.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution
            ?.nodeSelectorTerms ?? [];
        expect(terms.length).toBeGreaterThan(0);
        for (const t of terms)
          for (const k of needed)
            expect(t.matchExpressions?.some((e) => e.key === k && e.operator === "Exists")).toBe(true);
        for (const k of needed) expect(patched.metadata?.labels?.[k]).toBe(IN_USE_LABEL_VALUE);
        // Nothing the pod had is lost: each original term's expressions and fields are still in its term.
        const originalTerms =
          original.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution
            ?.nodeSelectorTerms ?? [];
        originalTerms.forEach((t, i) => {
          for (const e of t.matchExpressions ?? []) expect(terms[i]?.matchExpressions).toContainEqual(e);
          expect(terms[i]?.matchFields).toEqual(t.matchFields);
        });
        expect(patched.spec?.nodeSelector).toEqual(original.spec?.nodeSelector);
        expect(patched.spec?.tolerations).toEqual(original.spec?.tolerations);
        expect(patched.spec?.affinity?.nodeAffinity?.preferredDuringSchedulingIgnoredDuringExecution).toEqual(
          original.spec?.affinity?.nodeAffinity?.preferredDuringSchedulingIgnoredDuringExecution,
        );
        expect(patched.spec?.affinity?.podAntiAffinity).toEqual(original.spec?.affinity?.podAntiAffinity);
        for (const [k, v] of Object.entries(original.metadata?.labels ?? {}))
          if (!(needed as string[]).includes(k)) expect(patched.metadata?.labels?.[k]).toBe(v);
      }),
      { numRuns: 500 },
    );
  });

  it("is idempotent: patching the patched pod changes nothing", () => {
    fc.assert(
      fc.property(pod, keys, (original, needed) => {
        const once = applyPatch(original, requireProfilesPatch(original, needed));
        expect(requireProfilesPatch(once, needed)).toEqual([]);
        expect(applyPatch(once, requireProfilesPatch(once, needed))).toEqual(once);
      }),
      { numRuns: 500 },
    );
  });

  it("adds one new term when the pod has no required node affinity", () => {
    const ops = requireProfilesPatch({ spec: { containers: [] } }, ["seccomp.lockstep.dev/web"]);
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
