// The Lockstep labels this node should carry, computed from what is really installed, and the merge
// patch that gets the Node there. Pure: labels follow the disk (DESIGN invariant 1) because `failed`
// is read back from the disk and the kernel, never taken from intent. A Lockstep key this state never
// sets (one written by hand, say) is removed by the next patch.
import {
  AGENT_LABEL,
  APPARMOR_LABEL,
  type AppArmorLabelValue,
  PROFILE_KINDS,
  type ProfileKind,
  SYNCED_REVISION_LABEL,
} from "../src/api/constants.ts";
import { isLockstepLabelKey } from "../src/api/labels.ts";
import { isRevision } from "../src/api/node-profiles.ts";
import { NO_LONGER_HERE } from "./planner.ts";

export interface NodeLabelState {
  /**
   * The profile revision per kind up to which the disk and the kernel were verified; undefined for none
   * (boundFailureLabels withdraws it).
   */
  revisions: Readonly<Record<ProfileKind, string | undefined>>;
  /** Failure label key -> reason, for each profile that belongs here and is not installed. */
  failed: ReadonlyMap<string, string>;
  /** Selector-synced label key -> the node's value it placed profiles by. */
  selectorSynced: ReadonlyMap<string, string>;
  appArmor: AppArmorLabelValue;
  /** The agent's version once start-up reconciliation is done; undefined before. */
  agentVersion: string | undefined;
}

/** The value of `lockstep.dev/apparmor` on a node whose kernel can (or cannot) load AppArmor profiles. */
export function appArmorLabelValue(appArmorAvailable: boolean): AppArmorLabelValue {
  return appArmorAvailable ? "enabled" : "unavailable";
}

/**
 * This Node's labels as the planner reads them: the cached ones with the agent's own view of AppArmor,
 * which its next PATCH will publish (a pod's requirement on it must not wait for that PATCH).
 */
export function observedNodeLabels(
  labels: Readonly<Record<string, string>> | undefined,
  appArmorAvailable: boolean,
): Record<string, string> {
  return { ...labels, [APPARMOR_LABEL]: appArmorLabelValue(appArmorAvailable) };
}

export function desiredLockstepLabels(state: NodeLabelState): Record<string, string> {
  const labels: Record<string, string> = {
    ...Object.fromEntries(state.failed),
    ...Object.fromEntries(state.selectorSynced),
  };
  for (const kind of PROFILE_KINDS) {
    const revision = state.revisions[kind];
    if (revision !== undefined) labels[SYNCED_REVISION_LABEL[kind]] = revision;
  }
  labels[APPARMOR_LABEL] = state.appArmor;
  if (state.agentVersion !== undefined) labels[AGENT_LABEL] = state.agentVersion;
  return labels;
}

/**
 * A JSON merge patch for `metadata.labels` that changes only Lockstep keys: sets what differs, and
 * nulls (removes) Lockstep keys that should be gone. Undefined when nothing differs.
 */
export function lockstepLabelPatch(
  current: Readonly<Record<string, string>>,
  desired: Readonly<Record<string, string>>,
): { metadata: { labels: Record<string, string | null> } } | undefined {
  const labels: Record<string, string | null> = {};
  for (const [key, value] of Object.entries(desired)) if (current[key] !== value) labels[key] = value;
  for (const key of Object.keys(current))
    if (isLockstepLabelKey(key) && !(key in desired)) labels[key] = null;
  return Object.keys(labels).length === 0 ? undefined : { metadata: { labels } };
}

/** One failure label the agent would publish, with the revision of the profile it is about. */
export interface FailureLabel {
  kind: ProfileKind;
  /** The profile's name. */
  name: string;
  key: string;
  reason: string;
  /** profileRevision of the object now. */
  revision: string;
  /** A NoLongerHere mark of a profile still on the node (kept for a pod): a pod that lands finds it. */
  stillHere?: boolean;
}

export interface BoundedFailures {
  /** Failure label key -> reason: at most `cap` per kind. */
  failed: Map<string, string>;
  /** The revision label per kind; undefined withdraws it (the node claims no profile of that kind). */
  revisions: Record<ProfileKind, string | undefined>;
  /** The failures left without a label, oldest revision first. */
  unlabelled: FailureLabel[];
}

/**
 * At most `cap` failure labels per kind (src/api/limits.ts says why), without a node ever claiming a
 * profile it does not hold (DESIGN invariant 1). A profile without a failure label is unclaimed only
 * while the revision label stays below its revision, so the labels go to the failures that need them
 * most: first NoLongerHere marks of profiles gone from the node (a pod admitted before the profile moved
 * away requires an older revision, which no claim can stay below; the planner removes no more than the
 * cap can mark), then the oldest revisions, and last NoLongerHere marks of profiles still on the node (a
 * pod that lands there finds it, so leaving them out claims nothing false). The revision label stays
 * below the oldest failure left without a label, which keeps it as high as the cap allows for what is
 * installed. The same failures get labels each sync, so nothing flaps. Should a mark of a profile that
 * is gone be left out all the same, only withdrawing the revision label keeps the node from claiming it.
 */
export function boundFailureLabels(
  failures: readonly FailureLabel[],
  revisions: Readonly<Record<ProfileKind, string>>,
  cap: number,
): BoundedFailures {
  const out: BoundedFailures = { failed: new Map(), revisions: { ...revisions }, unlabelled: [] };
  for (const kind of PROFILE_KINDS) {
    const ordered = failures
      .filter((f) => f.kind === kind)
      .sort(
        (a, b) =>
          labelPriority(a) - labelPriority(b) ||
          compareRevisions(a.revision, b.revision) ||
          (a.key < b.key ? -1 : a.key > b.key ? 1 : 0),
      );
    for (const f of ordered.slice(0, cap)) out.failed.set(f.key, f.reason);
    const left = ordered.slice(cap);
    out.unlabelled.push(...left.filter((f) => !f.stillHere));
    const oldest = left.find((f) => !f.stillHere);
    if (oldest === undefined) continue;
    const below = isRevision(oldest.revision) ? BigInt(oldest.revision) - 1n : -1n;
    out.revisions[kind] =
      oldest.reason === NO_LONGER_HERE || below < 0n
        ? undefined
        : String(below < BigInt(revisions[kind]) ? below : BigInt(revisions[kind]));
  }
  return out;
}

/** 0: a mark of a profile gone from the node; 1: a failure; 2: a mark of a profile still here. */
function labelPriority(f: FailureLabel): number {
  if (f.reason !== NO_LONGER_HERE) return 1;
  return f.stillHere === true ? 2 : 0;
}

function compareRevisions(a: string, b: string): number {
  const [x, y] = [isRevision(a) ? BigInt(a) : -1n, isRevision(b) ? BigInt(b) : -1n];
  return x < y ? -1 : x > y ? 1 : 0;
}
