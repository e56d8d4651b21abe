// What a binding resolution (binding-match.ts) writes into the pod: the JSONPatch operations, and the pod
// as it reads once they are applied, which the guard (review.ts) then checks like any pod that names its
// profiles itself. Pure.
import { type JsonPatchOperation, jsonPointerToken } from "./affinity.ts";
import type { BindingAssignment } from "./binding-match.ts";
import { appliedBindings } from "./binding-match.ts";
import { localhostProfileFor } from "./labels.ts";
import type { AdmittedPod } from "./pod-profiles.ts";
import { BOUND_BY_ANNOTATION } from "./profile-binding.ts";

const SETTING_FIELD = { seccomp: "seccompProfile", apparmor: "appArmorProfile" } as const;

export interface BoundPod {
  operations: JsonPatchOperation[];
  pod: AdmittedPod;
}

/**
 * The operations that give each container its assigned profiles (Localhost, at container level, which
 * wins over the pod level), remove a legacy AppArmor annotation an override replaces (the API server
 * refuses a pod whose annotation and field disagree), and, with `annotate`, name the bindings in the
 * pod's annotation BOUND_BY_ANNOTATION. `annotate` is false for kubectl debug: the subresource keeps the
 * pod's metadata.
 */
export function applyBindings(
  pod: AdmittedPod,
  assignments: readonly BindingAssignment[],
  annotate: boolean,
): BoundPod {
  if (assignments.length === 0) return { operations: [], pod };
  const operations: JsonPatchOperation[] = [];
  const spec = { ...pod.spec };
  const byContainer = Map.groupBy(assignments, (a) => `${a.site.group}/${a.site.index}`);
  for (const group of byContainer.values()) {
    const site = group[0]?.site;
    if (site === undefined) continue;
    const containers = [...(spec[site.group] ?? [])];
    const container = containers[site.index];
    if (container === undefined) continue;
    const settings = Object.fromEntries(
      group.map((a) => [
        SETTING_FIELD[a.kind],
        { type: "Localhost", localhostProfile: localhostProfileFor(a.kind, a.profile) },
      ]),
    );
    const path = `/spec/${site.group}/${site.index}/securityContext`;
    // `add` on an existing member replaces it (RFC 6902 4.1): a profile of the container's own is overridden.
    if (container.securityContext === undefined) operations.push({ op: "add", path, value: settings });
    else
      for (const [field, value] of Object.entries(settings))
        operations.push({ op: "add", path: `${path}/${field}`, value });
    containers[site.index] = { ...container, securityContext: { ...container.securityContext, ...settings } };
    spec[site.group] = containers;
  }

  const annotations = { ...(pod.metadata?.annotations ?? {}) };
  const hadAnnotations = pod.metadata?.annotations !== undefined;
  for (const key of new Set(assignments.flatMap((a) => (a.legacyAnnotation ? [a.legacyAnnotation] : [])))) {
    operations.push({ op: "remove", path: `/metadata/annotations/${jsonPointerToken(key)}` });
    delete annotations[key];
  }
  if (annotate) {
    const value = appliedBindings(assignments).join(",");
    operations.push(
      hadAnnotations
        ? { op: "add", path: `/metadata/annotations/${jsonPointerToken(BOUND_BY_ANNOTATION)}`, value }
        : { op: "add", path: "/metadata/annotations", value: { [BOUND_BY_ANNOTATION]: value } },
    );
    annotations[BOUND_BY_ANNOTATION] = value;
  }
  return { operations, pod: { ...pod, metadata: { ...pod.metadata, annotations }, spec } };
}
