// Which watch events can change what a sync does, kept apart from the sync (as the controller keeps
// its triggers.ts): the sync is level-triggered and recomputes everything, so an event that cannot
// change its outcome only costs CPU, and on a DaemonSet that CPU is paid on every node. Each rollout
// delivers the agent several writes that are not for it: the controller's finalizer and status writes
// on the profile, and the echo of the agent's own Node PATCH. Pure.
import { isLockstepLabelKey, parseProfileLabelKey } from "../src/api/labels.ts";
import { revisionBefore } from "../src/api/node-profiles.ts";

/**
 * A profile change matters when its spec changed (or the profile came or went: the rendering of its
 * kind may change), or when it raised the newest revision delivered for its kind, which the agent must
 * claim (ADR 0024). The agent reads nothing else of a profile: a status or finalizer write that leaves
 * the revision where it was changes no file, no load and no label.
 */
export function profileChangeNeedsSync(
  specChanged: boolean,
  deliveredBefore: string,
  revision: string,
): boolean {
  return specChanged || revisionBefore(deliveredBefore, revision);
}

/**
 * A change of this Node's labels matters unless every key that changed is a Lockstep key that now holds
 * what the agent's last sync wanted (`own`: every Lockstep key it sets; any other is removed): that is
 * the echo of its own PATCH. Any other label may be named by a profile's nodeSelector or give the
 * node's architecture, and a Lockstep label someone else changed must be put back. `own` is undefined
 * before the agent's first sync.
 */
export function nodeLabelsChangeNeedsSync(
  before: Readonly<Record<string, string>>,
  after: Readonly<Record<string, string>>,
  own: ReadonlyMap<string, string> | undefined,
): boolean {
  for (const key of new Set([...Object.keys(before), ...Object.keys(after)])) {
    if (before[key] === after[key]) continue;
    if (own === undefined || !isLockstepLabelKey(key) || own.get(key) !== after[key]) return true;
  }
  return false;
}

/** A pod bound here matters only through its in-use labels (DESIGN invariant 6), not its status. */
export function podLabelsChangeNeedsSync(
  before: Readonly<Record<string, string>> | undefined,
  after: Readonly<Record<string, string>> | undefined,
): boolean {
  const inUse = (labels: Readonly<Record<string, string>> | undefined) =>
    Object.entries(labels ?? {})
      .filter(([key]) => parseProfileLabelKey(key) !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, value]) => `${key}=${value}`)
      .join("\n");
  return inUse(before) !== inUse(after);
}
