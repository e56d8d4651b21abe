// The webhook's review of a pod in a namespace where ProfileBindings act (docs/adr/0036-profile-bindings.md):
// resolve the bindings (binding-match.ts), refuse what cannot be bound (a conflict, a bound profile that
// does not exist or is being deleted), write the bound profiles into the pod (binding-patch.ts), and hand
// the bound pod to the same guard as every pod (review.ts), so that the one patch carries both. Pure.

import {
  type BindingAssignment,
  type BindingResolution,
  type CompiledBinding,
  type ContainerSite,
  MAX_MATCH_STEPS,
  resolveBindings,
} from "../api/binding-match.ts";
import { applyBindings } from "../api/binding-patch.ts";
import { OBJECT_KIND, OBJECT_PLURAL, type ProfileKind } from "../api/constants.ts";
import type { AdmittedPod } from "../api/pod-profiles.ts";
import {
  type BindingsNamespaceMode,
  PROFILE_BINDING_KIND,
  type RefusalReason,
} from "../api/profile-binding.ts";
import { type PodReview, type ReviewContext, reviewEphemeralContainers, reviewPodCreate } from "./review.ts";

/** The bindings of the pod's namespace and what its namespace label allows. */
export interface BindingScope {
  bindings: readonly CompiledBinding[];
  mode: BindingsNamespaceMode;
}

/** What a review did with one binding, for its status (binding-status.ts). */
export type BindingOutcome =
  | { binding: string; result: "bound" }
  | { binding: string; result: "refused"; reason: RefusalReason; message: string };

export interface BoundReview {
  review: PodReview;
  outcomes: BindingOutcome[];
}

const bindingName = (name: string) => `${PROFILE_BINDING_KIND} ${JSON.stringify(name)}`;
const profileName = (kind: ProfileKind, name: string) => `${OBJECT_KIND[kind]} ${JSON.stringify(name)}`;
const containerName = (site: ContainerSite) => `container ${JSON.stringify(site.name)}`;

interface Refusal {
  message: string;
  bindings: string[];
  reason: RefusalReason;
}

/** Conflicts, then bound profiles that are missing or being deleted: each a refusal naming its bindings. */
function bindingRefusals(resolution: BindingResolution, ctx: ReviewContext): Refusal[] {
  const refusals: Refusal[] = resolution.conflicts.map((c) => ({
    reason: "Conflict",
    bindings: c.candidates.map((x) => x.binding),
    message: `${containerName(c.site)}: ${c.candidates.map((x) => `${bindingName(x.binding)} (${profileName(c.kind, x.profile)})`).join(" and ")} match it equally specifically: make one more specific (a longer image pattern, more podSelector requirements) or bind the same profile`,
  }));
  for (const a of resolution.assignments) {
    const view = ctx.profile(a.kind, a.profile);
    const what = `${containerName(a.site)} is bound by ${a.bindings.map(bindingName).join(", ")} to ${profileName(a.kind, a.profile)}`;
    if (view === undefined)
      refusals.push({
        reason: "ProfileMissing",
        bindings: a.bindings,
        message: `${what}, which does not exist: create it first (kubectl get ${OBJECT_PLURAL[a.kind]})`,
      });
    else if (view.terminating)
      refusals.push({
        reason: "ProfileTerminating",
        bindings: a.bindings,
        message: `${what}, which is being deleted`,
      });
  }
  return refusals;
}

function refused(refusals: readonly Refusal[], limit = 10): BoundReview {
  const messages = [...new Set(refusals.map((r) => r.message))];
  const more = messages.length - limit;
  const message = messages.slice(0, limit).join("; ") + (more > 0 ? `; and ${more} more` : "");
  const outcomes: BindingOutcome[] = [];
  const seen = new Set<string>();
  for (const r of refusals)
    for (const binding of r.bindings)
      if (!seen.has(binding)) {
        seen.add(binding);
        outcomes.push({ binding, result: "refused", reason: r.reason, message: r.message });
      }
  return { review: { allowed: false, message }, outcomes };
}

const TOO_MUCH_WORK = `matching the pod's containers against the namespace's ${PROFILE_BINDING_KIND}s takes more than the ${MAX_MATCH_STEPS} steps the webhook spends on one pod: use fewer containers, shorter images or fewer bindings`;

function overrideWarnings(resolution: BindingResolution): string[] {
  return resolution.overrideRefused.map(
    (o) =>
      `${bindingName(o.binding)} says override, but this namespace forbids overriding: ${containerName(o.site)} keeps its own ${o.kind === "seccomp" ? "seccomp" : "AppArmor"} profile`,
  );
}

/** The outcome of a review the guard refused after binding: each applied binding is told why. */
function guardRefusal(review: PodReview, assignments: readonly BindingAssignment[]): BoundReview {
  if (review.allowed) return { review, outcomes: [] };
  const bindings = [...new Set(assignments.flatMap((a) => a.bindings))];
  return refused([{ reason: "PodRefused", bindings, message: review.message }]);
}

/** Pod CREATE: the bindings' profiles and the guard, in one patch. */
export function reviewBoundPodCreate(pod: AdmittedPod, ctx: ReviewContext, scope: BindingScope): BoundReview {
  const resolution = resolveBindings(pod, scope.bindings, { overrideAllowed: scope.mode === "enabled" });
  if (resolution.overBudget) return { review: { allowed: false, message: TOO_MUCH_WORK }, outcomes: [] };
  const refusals = bindingRefusals(resolution, ctx);
  if (refusals.length > 0) return refused(refusals);
  const bound = applyBindings(pod, resolution.assignments, true);
  const review = reviewPodCreate(bound.pod, ctx);
  if (!review.allowed) return guardRefusal(review, resolution.assignments);
  return {
    review: {
      ...review,
      patch: [...bound.operations, ...review.patch],
      warnings: [...overrideWarnings(resolution), ...review.warnings],
    },
    outcomes: [...new Set(resolution.assignments.flatMap((a) => a.bindings))].map((binding) => ({
      binding,
      result: "bound",
    })),
  };
}

/**
 * kubectl debug (UPDATE of pods/ephemeralcontainers): the new ephemeral containers get their bindings'
 * profiles like any container, then the same checks as a debug container that names them itself (the
 * pod's node must have them). The subresource keeps the pod's metadata, so the binding is named in a
 * warning instead of the annotation.
 */
export function reviewBoundEphemeralContainers(
  pod: AdmittedPod,
  before: AdmittedPod,
  ctx: ReviewContext,
  scope: BindingScope,
): BoundReview {
  const existing = new Set((before.spec.ephemeralContainers ?? []).map((c) => c.name));
  const resolution = resolveBindings(pod, scope.bindings, {
    overrideAllowed: scope.mode === "enabled",
    only: (site) => site.group === "ephemeralContainers" && !existing.has(site.name),
  });
  if (resolution.overBudget) return { review: { allowed: false, message: TOO_MUCH_WORK }, outcomes: [] };
  const refusals = bindingRefusals(resolution, ctx);
  if (refusals.length > 0) return refused(refusals);
  const bound = applyBindings(pod, resolution.assignments, false);
  const review = reviewEphemeralContainers(bound.pod, before, ctx);
  if (!review.allowed) return guardRefusal(review, resolution.assignments);
  const named = resolution.assignments.map(
    (a) =>
      `ephemeral ${containerName(a.site)} gets ${profileName(a.kind, a.profile)} from ${a.bindings.map(bindingName).join(", ")}`,
  );
  return {
    review: {
      ...review,
      patch: [...bound.operations, ...review.patch],
      warnings: [...named, ...overrideWarnings(resolution), ...review.warnings],
    },
    outcomes: [...new Set(resolution.assignments.flatMap((a) => a.bindings))].map((binding) => ({
      binding,
      result: "bound",
    })),
  };
}
