// The JSONPatch (RFC 6902) that keeps a pod off every node lacking one of its profiles, and sets the
// pod's in-use labels to exactly the profiles it uses (for the controller's in-use protection).
//
// What a node must carry is node-profiles.ts's profileRequirements (revision labels, no failure label,
// the profiles' nodeSelectors and their synced record). Node-affinity terms are ORed, so every
// non-empty term the pod has gets the requirements (a term left without them could be satisfied by a
// node lacking a profile), and each term stays one term: the affinity grows by the requirements per
// term, never by a term. A term that already carries them all is left as it is, so reinvocation adds
// nothing. Everything else the pod says is left as it is.
//
// A term with neither matchExpressions nor matchFields matches no node (k8s.io/component-helpers
// nodeaffinity): adding requirements would turn it into one that matches nodes, so it stays empty. A
// required node affinity without terms is invalid (the API server's ValidateNodeSelector); it is
// refused here rather than "rescued" into a valid pod.
import { isDeepStrictEqual } from "node:util";
import { isRevision, type NodeRequirement, revisionBefore, sameRequirement } from "./node-profiles.ts";
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

function withRequirements(term: NodeSelectorTerm, reqs: readonly NodeRequirement[]): NodeSelectorTerm {
  const missing = reqs.filter((r) => !(term.matchExpressions ?? []).some((e) => sameRequirement(r, e)));
  return { ...term, matchExpressions: [...(term.matchExpressions ?? []), ...missing] };
}

/**
 * Whether `term` already asks at least `r`: the same requirement, or, for a revision's `Gt`, one at
 * that revision or a newer one (a pod that uses several profiles of a kind requires the newest).
 */
function termAsks(term: NodeSelectorTerm, r: NodeRequirement): boolean {
  return (term.matchExpressions ?? []).some((e) => {
    if (r.operator !== "Gt" || e.operator !== "Gt" || e.key !== r.key) return sameRequirement(r, e);
    const [wanted, asked] = [r.values?.[0], e.values?.[0]];
    return (
      e.values?.length === 1 && isRevision(wanted) && isRevision(asked) && !revisionBefore(asked, wanted)
    );
  });
}

/**
 * Whether the pod's required node affinity as it stands keeps it on nodes that meet `guard`: it has
 * terms, and every term that can match a node asks all of it (terms are ORed, so one term without them
 * lets the pod onto a node lacking the profile). What the pod's labels say does not count: the
 * scheduler does not read them.
 */
export function affinityGuards(pod: AdmittedPod, guard: readonly NodeRequirement[]): boolean {
  const terms =
    pod.spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? [];
  return (
    terms.length > 0 && terms.every((term) => isEmptyTerm(term) || guard.every((r) => termAsks(term, r)))
  );
}

/** A term that matches no node at all: no expressions and no fields. */
export function isEmptyTerm(term: NodeSelectorTerm): boolean {
  return (term.matchExpressions ?? []).length === 0 && (term.matchFields ?? []).length === 0;
}

export function requireProfilesPatch(
  pod: AdmittedPod,
  labelKeys: readonly string[],
  guard: readonly NodeRequirement[],
): AffinityPatch {
  const keys = [...new Set(labelKeys)];
  const labels = inUseLabelOperations(pod, keys);
  if (keys.length === 0) return { operations: labels };
  const affinity = affinityOperations(pod, guard);
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

function guardedTerms(
  terms: readonly NodeSelectorTerm[],
  guard: readonly NodeRequirement[],
): NodeSelectorTerm[] {
  return terms.map((term) => (isEmptyTerm(term) ? term : withRequirements(term, guard)));
}

function affinityOperations(pod: AdmittedPod, guard: readonly NodeRequirement[]): AffinityPatch {
  const required = { nodeSelectorTerms: [{ matchExpressions: [...guard] }] };
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
  const guarded = guardedTerms(terms, guard);
  if (isDeepStrictEqual(guarded, terms)) return { operations: [] };
  return { operations: [{ op: "replace", path: `${REQUIRED_PATH}/nodeSelectorTerms`, value: guarded }] };
}
