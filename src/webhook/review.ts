// The webhook's decisions, as pure functions of the pod and what the caches say about its profiles
// (and, for a pod that names its node, that node's labels).
import { affinityGuards, type JsonPatchOperation, requireProfilesPatch } from "../api/affinity.ts";
import { OBJECT_KIND, OBJECT_PLURAL, type ProfileKind } from "../api/constants.ts";
import { profileLabelKey } from "../api/labels.ts";
import { nodeHasProfile, type ProfilePlacement, profileRequirements } from "../api/node-profiles.ts";
import {
  type AdmittedPod,
  describeReferrer,
  distinctProfiles,
  type PodProfileSettings,
  podProfileSettings,
} from "../api/pod-profiles.ts";

export interface ProfileView {
  /** deletionTimestamp is set: new pods must not start depending on it. */
  terminating: boolean;
  /** From the controller's status; undefined when no status has been written yet. */
  installedNodes: number | undefined;
  /** What a node must carry to hold it (node-profiles.ts). */
  placement: ProfilePlacement;
}

export interface ReviewContext {
  profile(kind: ProfileKind, name: string): ProfileView | undefined;
  /** Labels of spec.nodeName's Node, when the pod names one; undefined when that Node does not exist. */
  boundNodeLabels?: Readonly<Record<string, string>> | undefined;
}

export type PodReview =
  | { allowed: true; patch: JsonPatchOperation[]; warnings: string[]; profiles: string[] }
  | { allowed: false; message: string };

/**
 * A refusal lists this many problems and counts the rest: a pod with thousands of containers naming a
 * missing profile made one line each (a 60 MB message for a 3 MB body).
 */
export const MAX_LISTED_PROBLEMS = 10;

function joinProblems(problems: readonly string[]): string {
  const listed = problems.slice(0, MAX_LISTED_PROBLEMS).join("; ");
  const more = problems.length - MAX_LISTED_PROBLEMS;
  return more > 0 ? `${listed}; and ${more} more` : listed;
}

const kindAndName = (kind: ProfileKind, name: string) => `${OBJECT_KIND[kind]} ${JSON.stringify(name)}`;

/** Every reason the settings cannot be admitted: invalid paths, missing or terminating profiles. */
function settingProblems(settings: PodProfileSettings, ctx: ReviewContext): string[] {
  const problems = settings.invalid.map((s) => `${describeReferrer(s)}: ${s.field}: ${s.message}`);
  for (const ref of settings.references) {
    const view = ctx.profile(ref.kind, ref.name);
    const what = `${describeReferrer(ref)} references ${kindAndName(ref.kind, ref.name)} (${ref.field})`;
    if (view === undefined)
      problems.push(
        `${what}, which does not exist: create it first (kubectl get ${OBJECT_PLURAL[ref.kind]})`,
      );
    else if (view.terminating) problems.push(`${what}, which is being deleted`);
  }
  return [...new Set(problems)];
}

/** The profiles the node named by spec.nodeName lacks (all of them when that Node does not exist). */
function missingOnBoundNode(profiles: { kind: ProfileKind; name: string }[], ctx: ReviewContext) {
  return profiles.filter((p) => {
    const placement = ctx.profile(p.kind, p.name)?.placement;
    return !(placement && ctx.boundNodeLabels && nodeHasProfile(placement, ctx.boundNodeLabels));
  });
}

/** The placements of profiles settingProblems found to exist. */
function placementsOf(
  profiles: { kind: ProfileKind; name: string }[],
  ctx: ReviewContext,
): ProfilePlacement[] {
  return profiles.flatMap((p) => {
    const placement = ctx.profile(p.kind, p.name)?.placement;
    return placement ? [placement] : [];
  });
}

const listProfiles = (profiles: { kind: ProfileKind; name: string }[]) =>
  profiles.map((p) => kindAndName(p.kind, p.name)).join(", ");

/** Pod CREATE: refuse what cannot run, otherwise require what nodes holding the profiles carry, and set the in-use labels. */
export function reviewPodCreate(pod: AdmittedPod, ctx: ReviewContext): PodReview {
  const settings = podProfileSettings(pod);
  const problems = settingProblems(settings, ctx);
  if (problems.length > 0) return { allowed: false, message: joinProblems(problems) };

  const profiles = distinctProfiles(settings.references);
  const nodeName = pod.spec.nodeName;
  if (nodeName && profiles.length > 0) {
    const missing = missingOnBoundNode(profiles, ctx);
    if (missing.length > 0)
      return {
        allowed: false,
        message: `spec.nodeName is ${JSON.stringify(nodeName)}, which does not have ${listProfiles(missing)} installed: remove spec.nodeName so the scheduler picks a node that has it`,
      };
  }

  const keys = profiles.map((p) => profileLabelKey(p.kind, p.name));
  const patch = requireProfilesPatch(pod, keys, profileRequirements(placementsOf(profiles, ctx)));
  if ("refused" in patch) return { allowed: false, message: patch.refused };
  const warnings = profiles
    .filter((p) => ctx.profile(p.kind, p.name)?.installedNodes === 0)
    .map(
      (p) =>
        `${kindAndName(p.kind, p.name)} is not installed on any node yet: the pod stays Pending until a node has it`,
    );
  return { allowed: true, patch: patch.operations, warnings, profiles: keys };
}

/**
 * UPDATE of pods/ephemeralcontainers (`kubectl debug`): the only change is new ephemeral containers,
 * and a pod cannot move, so each profile a new one names must exist and be on the pod's node already.
 * Labels and affinity cannot change through this subresource, so nothing is patched.
 */
export function reviewEphemeralContainers(
  pod: AdmittedPod,
  before: AdmittedPod,
  ctx: ReviewContext,
): PodReview {
  const existing = new Set((before.spec.ephemeralContainers ?? []).map((c) => c.name));
  const isNew = (s: { group: string; container: string | undefined }) =>
    s.group === "ephemeralContainers" && s.container !== undefined && !existing.has(s.container);
  const all = podProfileSettings(pod);
  const added: PodProfileSettings = {
    references: all.references.filter(isNew),
    invalid: all.invalid.filter(isNew),
  };
  const problems = settingProblems(added, ctx);
  if (problems.length > 0) return { allowed: false, message: joinProblems(problems) };
  const profiles = distinctProfiles(added.references);
  if (profiles.length === 0) return { allowed: true, patch: [], warnings: [], profiles: [] };

  const podName = JSON.stringify(pod.metadata?.name ?? "");
  const nodeName = pod.spec.nodeName;
  const ownLabels = pod.metadata?.labels ?? {};
  if (nodeName) {
    const missing = missingOnBoundNode(profiles, ctx);
    if (missing.length > 0)
      return {
        allowed: false,
        message: `pod ${podName} runs on node ${JSON.stringify(nodeName)} (spec.nodeName), which does not have ${listProfiles(missing)} installed, and a pod cannot move: use a profile that node has, or install this one there`,
      };
  } else {
    // Not bound yet: the scheduler honours only what the pod's node affinity requires, so each new
    // profile must be required in every term already (this subresource cannot change the affinity).
    // Not the pod's in-use labels: a pod created before the webhook saw it keeps the labels it was
    // written with, and the scheduler does not read them anyway.
    const unguarded = profiles.filter(
      (p) => !affinityGuards(pod, profileRequirements(placementsOf([p], ctx))),
    );
    if (unguarded.length > 0)
      return {
        allowed: false,
        message: `pod ${podName} is not scheduled yet (no spec.nodeName) and its node affinity does not require ${listProfiles(unguarded)} in every term (spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution): add the ephemeral container once the pod runs on a node that has it`,
      };
  }
  const keys = profiles.map((p) => profileLabelKey(p.kind, p.name));
  const warnings = profiles
    .filter((p) => ownLabels[profileLabelKey(p.kind, p.name)] === undefined)
    .map(
      (p) =>
        `${kindAndName(p.kind, p.name)} is not among the pod's in-use labels (they are set at creation): deleting the profile is not held back by this ephemeral container`,
    );
  return { allowed: true, patch: [], warnings, profiles: keys };
}
