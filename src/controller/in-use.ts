// Which pods keep a Terminating profile from going (the in-use finalizer): found with a label-selector
// list (never a pod cache, ADR 0011), as the webhook labelled them at CREATE. Pure: the query and the
// reading of its answer; the controller sends the list.
import type { V1PodList } from "@kubernetes/client-node";
import type { ProfileKind } from "../api/constants.ts";
import { profileLabelKey } from "../api/labels.ts";
import type { HandlerResult } from "../kube/workqueue.ts";

/** How many pods an InUse message names; the rest are counted by the list's size only. */
export const IN_USE_PODS_NAMED = 5;

/**
 * The pods a profile is in use by: every phase but the two a pod never leaves. A Succeeded or Failed
 * pod runs no container again (DESIGN invariant 6), so it does not hold the profile even while the
 * object stays around (Jobs keep theirs).
 */
export function podsUsingQuery(kind: ProfileKind, name: string) {
  return {
    labelSelector: profileLabelKey(kind, name),
    fieldSelector: "status.phase!=Succeeded,status.phase!=Failed",
    limit: IN_USE_PODS_NAMED,
  };
}

/** The pods of one page named namespace/name, and how many more there are as one more entry. */
export function podsUsingNames(pods: V1PodList): string[] {
  const named = pods.items.map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`);
  const more = pods.metadata?.remainingItemCount ?? (pods.metadata?._continue ? 1 : 0);
  return more > 0 ? [...named, `${more} more`] : named;
}

/**
 * When a profile is reconciled again after its status was written: a held status when its hold ends
 * (`held`); a profile waiting for its last pod after `recheckMs`, since pods are not watched (ADR 0011);
 * otherwise only when a watch wakes it.
 */
export function requeueAfterStatus(
  held: HandlerResult,
  waitingForPods: boolean,
  recheckMs: number,
): HandlerResult {
  return held ?? (waitingForPods ? { requeueAfterMs: recheckMs } : undefined);
}
