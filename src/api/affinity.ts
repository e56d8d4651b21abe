// The JSONPatch (RFC 6902) that keeps a pod off every node lacking one of its profiles: for each
// profile label key, a required node-affinity requirement `{key, operator: Exists}` in EVERY
// non-empty nodeSelectorTerm (terms are ORed, so a requirement in only one of them could be bypassed by
// another), or one new term when the pod has none; and the pod's in-use labels set to exactly the
// profiles it uses, for the controller's in-use protection. Everything else the pod says is left as it
// is. Idempotent: a pod that already carries a requirement or label gets no second one, so
// reinvocation adds nothing.
//
// A term with neither matchExpressions nor matchFields matches no node (k8s.io/component-helpers
// nodeaffinity): adding a requirement would turn it into one that matches every node with the profile,
// so it stays empty. A required node affinity without terms is invalid (the API server's
// ValidateNodeSelector); it is refused here rather than "rescued" into a valid pod.
import { type AdmittedPod, isPodInUseLabelKey, type NodeSelectorTerm } from "./pod-profiles.ts";

export type JsonPatchOperation =
  | { op: "add"; path: string; value: unknown }
  | { op: "replace"; path: string; value: unknown }
  | { op: "remove"; path: string };

/** The patch, or why the pod as written cannot be guarded (a message naming the field). */
export type AffinityPatch = { operations: JsonPatchOperation[] } | { refused: string };

/** The value of a pod label that marks a profile in use. */
export const IN_USE_LABEL_VALUE = "true";

const REQUIRED_PATH = "/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution";
const REQUIRED_FIELD = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution";

/** RFC 6901: `~` and `/` inside a key are escaped, as label keys contain `/`. */
export function jsonPointerToken(key: string): string {
  return key.replace(/~/g, "~0").replace(/\//g, "~1");
}

function requirement(key: string) {
  return { key, operator: "Exists" };
}

function hasRequirement(term: NodeSelectorTerm, key: string): boolean {
  return (term.matchExpressions ?? []).some((e) => e.key === key && e.operator === "Exists");
}

/** A term that matches no node at all: no expressions and no fields. */
export function isEmptyTerm(term: NodeSelectorTerm): boolean {
  return (term.matchExpressions ?? []).length === 0 && (term.matchFields ?? []).length === 0;
}

export function requireProfilesPatch(pod: AdmittedPod, labelKeys: readonly string[]): AffinityPatch {
  const keys = [...new Set(labelKeys)];
  const labels = inUseLabelOperations(pod, keys);
  if (keys.length === 0) return { operations: labels };
  const affinity = affinityOperations(pod, keys);
  return "refused" in affinity ? affinity : { operations: [...labels, ...affinity.operations] };
}

/** Makes the pod's in-use labels exactly `keys`: adds the missing ones, removes every other one. */
export function inUseLabelOperations(pod: AdmittedPod, keys: readonly string[]): JsonPatchOperation[] {
  const labels = pod.metadata?.labels;
  if (labels === undefined) {
    if (keys.length === 0) return [];
    return [
      {
        op: "add",
        path: "/metadata/labels",
        value: Object.fromEntries(keys.map((k) => [k, IN_USE_LABEL_VALUE])),
      },
    ];
  }
  const wanted = new Set(keys);
  const removals = Object.keys(labels)
    .filter((k) => isPodInUseLabelKey(k) && !wanted.has(k))
    .map((k): JsonPatchOperation => ({ op: "remove", path: `/metadata/labels/${jsonPointerToken(k)}` }));
  const additions = keys
    .filter((k) => labels[k] !== IN_USE_LABEL_VALUE)
    .map(
      (k): JsonPatchOperation => ({
        op: k in labels ? "replace" : "add",
        path: `/metadata/labels/${jsonPointerToken(k)}`,
        value: IN_USE_LABEL_VALUE,
      }),
    );
  return [...removals, ...additions];
}

function affinityOperations(pod: AdmittedPod, keys: readonly string[]): AffinityPatch {
  const newTerm = { matchExpressions: keys.map(requirement) };
  const required = { nodeSelectorTerms: [newTerm] };
  const affinity = pod.spec.affinity;
  if (!affinity)
    return {
      operations: [
        {
          op: "add",
          path: "/spec/affinity",
          value: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: required } },
        },
      ],
    };
  const nodeAffinity = affinity.nodeAffinity;
  if (!nodeAffinity)
    return {
      operations: [
        {
          op: "add",
          path: "/spec/affinity/nodeAffinity",
          value: { requiredDuringSchedulingIgnoredDuringExecution: required },
        },
      ],
    };
  const existing = nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution;
  if (!existing) return { operations: [{ op: "add", path: REQUIRED_PATH, value: required }] };
  const terms = existing.nodeSelectorTerms ?? [];
  if (terms.length === 0)
    return {
      refused: `${REQUIRED_FIELD}.nodeSelectorTerms: must have at least one term (the API server refuses an empty list): add a term, or remove requiredDuringSchedulingIgnoredDuringExecution`,
    };
  return {
    operations: terms.flatMap((term, i): JsonPatchOperation[] => {
      if (isEmptyTerm(term)) return [];
      const missing = keys.filter((k) => !hasRequirement(term, k));
      if (missing.length === 0) return [];
      const termPath = `${REQUIRED_PATH}/nodeSelectorTerms/${i}/matchExpressions`;
      if (!term.matchExpressions) return [{ op: "add", path: termPath, value: missing.map(requirement) }];
      return missing.map((k) => ({ op: "add" as const, path: `${termPath}/-`, value: requirement(k) }));
    }),
  };
}
