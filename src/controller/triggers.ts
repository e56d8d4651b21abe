// Which changes wake which profiles, kept apart from the reconcile (as controller-runtime keeps its
// `handler` package apart from `Reconcile`): the reconcile reads everything from the caches and has no
// event-specific branches, so all that matters about an event is which keys it wakes. Pure.
import type { ProfileKind } from "../api/constants.ts";
import { readInstallReport } from "../api/install-report.ts";
import type { ProfileChange } from "../kube/profile-cache.ts";

export type Wake =
  /** Reconcile this one profile. */
  | { profile: { kind: ProfileKind; name: string } }
  /** Reconcile every profile of a kind. */
  | { kind: ProfileKind }
  /** Reconcile every profile, once a burst of Node changes has passed (a rollout labels many Nodes). */
  | { allAfterNodeBurst: true }
  /** Nothing to do. */
  | undefined;

/** How long Node label changes are collected before every profile is reconciled once for all of them. */
export const NODE_BURST_MS = 50;

/**
 * A spec change, or a profile appearing or going, may change every profile of its kind (children
 * inherit from bases; a deleted base leaves its children Invalid). Any other change (status,
 * finalizers, deletionTimestamp) concerns that profile alone.
 */
export function profileChangeWakes({ kind, name, specChanged }: ProfileChange): Wake {
  return specChanged ? { kind } : { profile: { kind, name } };
}

/**
 * A Node changes for many reasons (heartbeats, taints, annotations); only its labels matter to any
 * profile's status. `after` is undefined for a Node that is gone.
 */
export function nodeChangeWakes(
  before: Readonly<Record<string, string>> | undefined,
  after: Readonly<Record<string, string>> | undefined,
): Wake {
  return sameLabels(before, after) ? undefined : { allAfterNodeBurst: true };
}

/** An agent's install report about a profile wakes that profile; any other Event nothing. */
export function installReportWakes(event: unknown): Wake {
  const read = readInstallReport(event);
  return read ? { profile: { kind: read.report.kind, name: read.report.name } } : undefined;
}

function sameLabels(
  a: Readonly<Record<string, string>> | undefined,
  b: Readonly<Record<string, string>> | undefined,
): boolean {
  if (a === undefined || b === undefined) return a === b;
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}
