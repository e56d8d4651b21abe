// The webhook's decision on one pod, as a pure function of the pod and what the caches say about its
// profiles (and, for a pod that already names its node, that node's labels).
import type { V1Pod } from "@kubernetes/client-node";
import { type JsonPatchOperation, requireProfilesPatch } from "../api/affinity.ts";
import { OBJECT_KIND, type ProfileKind } from "../api/constants.ts";
import { localhostProfileFor, profileLabelKey } from "../api/labels.ts";
import { describeReferrer, distinctProfiles, profilesReferencedByPod } from "../api/pod-profiles.ts";

export interface ProfileView {
  /** deletionTimestamp is set: new pods must not start depending on it. */
  terminating: boolean;
  /** From the controller's status; undefined when no status has been written yet. */
  installedNodes: number | undefined;
}

export interface ReviewContext {
  profile(kind: ProfileKind, name: string): ProfileView | undefined;
  /** Labels of spec.nodeName's Node, when the pod names one; undefined when that Node does not exist. */
  boundNodeLabels?: Readonly<Record<string, string>> | undefined;
}

export type PodReview =
  | { allowed: true; patch: JsonPatchOperation[]; warnings: string[]; profiles: string[] }
  | { allowed: false; message: string };

const kindAndName = (kind: ProfileKind, name: string) => `${OBJECT_KIND[kind]} ${JSON.stringify(name)}`;

export function reviewPod(pod: V1Pod, ctx: ReviewContext): PodReview {
  const refs = profilesReferencedByPod(pod);
  if (refs.length === 0) return { allowed: true, patch: [], warnings: [], profiles: [] };

  const problems: string[] = [];
  for (const ref of refs) {
    const view = ctx.profile(ref.kind, ref.name);
    const what = `${describeReferrer(ref)} references ${kindAndName(ref.kind, ref.name)} (${ref.field}: ${localhostProfileFor(ref.kind, ref.name)})`;
    if (view === undefined)
      problems.push(
        `${what}, which does not exist: create it first (kubectl get ${ref.kind === "seccomp" ? "seccompprofiles" : "apparmorprofiles"})`,
      );
    else if (view.terminating) problems.push(`${what}, which is being deleted`);
  }
  if (problems.length > 0) return { allowed: false, message: dedupe(problems).join("; ") };

  const profiles = distinctProfiles(refs);
  const nodeName = pod.spec?.nodeName;
  if (nodeName) {
    const labels = ctx.boundNodeLabels;
    const missing = profiles.filter((p) => labels?.[profileLabelKey(p.kind, p.name)] === undefined);
    if (missing.length > 0)
      return {
        allowed: false,
        message: `spec.nodeName is ${JSON.stringify(nodeName)}, which does not have ${missing
          .map((p) => kindAndName(p.kind, p.name))
          .join(", ")} installed: remove spec.nodeName so the scheduler picks a node that has it`,
      };
  }

  const warnings = profiles
    .filter((p) => ctx.profile(p.kind, p.name)?.installedNodes === 0)
    .map(
      (p) =>
        `${kindAndName(p.kind, p.name)} is not installed on any node yet: the pod stays Pending until a node has it`,
    );
  const keys = profiles.map((p) => profileLabelKey(p.kind, p.name));
  return { allowed: true, patch: requireProfilesPatch(pod, keys), warnings, profiles: keys };
}

function dedupe(items: string[]): string[] {
  return [...new Set(items)];
}
