// The JSONPatch (RFC 6902) that keeps a pod off every node lacking one of its profiles: for each
// profile label key, a required node-affinity requirement `{key, operator: Exists}` in EVERY
// nodeSelectorTerm (terms are ORed, so a requirement in only one of them could be bypassed by another),
// or one new term when the pod has none; and a pod label per profile for the controller's in-use
// protection. Everything else the pod says is left as it is. Idempotent: a pod that already carries a
// requirement or label gets no second one, so reinvocation adds nothing.
import type { V1NodeSelectorRequirement, V1Pod } from "@kubernetes/client-node";

export type JsonPatchOperation =
  | { op: "add"; path: string; value: unknown }
  | { op: "replace"; path: string; value: unknown };

/** The value of a pod label that marks a profile in use. */
export const IN_USE_LABEL_VALUE = "true";

/** RFC 6901: `~` and `/` inside a key are escaped, as label keys contain `/`. */
export function jsonPointerToken(key: string): string {
  return key.replace(/~/g, "~0").replace(/\//g, "~1");
}

function requirement(key: string): V1NodeSelectorRequirement {
  return { key, operator: "Exists" };
}

function hasRequirement(expressions: readonly V1NodeSelectorRequirement[] | undefined, key: string): boolean {
  return (expressions ?? []).some((e) => e.key === key && e.operator === "Exists");
}

export function requireProfilesPatch(pod: V1Pod, labelKeys: readonly string[]): JsonPatchOperation[] {
  const keys = [...new Set(labelKeys)];
  if (keys.length === 0) return [];
  return [...labelOperations(pod, keys), ...affinityOperations(pod, keys)];
}

function labelOperations(pod: V1Pod, keys: readonly string[]): JsonPatchOperation[] {
  const labels = pod.metadata?.labels;
  if (labels === undefined || labels === null)
    return [
      {
        op: "add",
        path: "/metadata/labels",
        value: Object.fromEntries(keys.map((k) => [k, IN_USE_LABEL_VALUE])),
      },
    ];
  return keys
    .filter((k) => labels[k] !== IN_USE_LABEL_VALUE)
    .map((k) => ({
      op: k in labels ? ("replace" as const) : ("add" as const),
      path: `/metadata/labels/${jsonPointerToken(k)}`,
      value: IN_USE_LABEL_VALUE,
    }));
}

function affinityOperations(pod: V1Pod, keys: readonly string[]): JsonPatchOperation[] {
  const newTerm = { matchExpressions: keys.map(requirement) };
  const required = { nodeSelectorTerms: [newTerm] };
  const affinity = pod.spec?.affinity;
  if (!affinity)
    return [
      {
        op: "add",
        path: "/spec/affinity",
        value: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: required } },
      },
    ];
  const nodeAffinity = affinity.nodeAffinity;
  if (!nodeAffinity)
    return [
      {
        op: "add",
        path: "/spec/affinity/nodeAffinity",
        value: { requiredDuringSchedulingIgnoredDuringExecution: required },
      },
    ];
  const base = "/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution";
  const existing = nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution;
  if (!existing) return [{ op: "add", path: base, value: required }];
  const terms = existing.nodeSelectorTerms ?? [];
  if (terms.length === 0) return [{ op: "replace", path: `${base}/nodeSelectorTerms`, value: [newTerm] }];
  return terms.flatMap((term, i): JsonPatchOperation[] => {
    const missing = keys.filter((k) => !hasRequirement(term.matchExpressions, k));
    if (missing.length === 0) return [];
    const termPath = `${base}/nodeSelectorTerms/${i}/matchExpressions`;
    if (!term.matchExpressions) return [{ op: "add", path: termPath, value: missing.map(requirement) }];
    return missing.map((k) => ({ op: "add" as const, path: `${termPath}/-`, value: requirement(k) }));
  });
}
