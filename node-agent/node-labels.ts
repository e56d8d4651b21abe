// The Lockstep labels this node should carry, computed from what is really installed, and the merge
// patch that gets the Node there. Pure: labels follow the disk (DESIGN invariant 1) because `failed`
// is read back from the disk and the kernel, never taken from intent. An older agent's per-profile
// labels are Lockstep keys this state never sets, so the first patch removes them.
import {
  AGENT_LABEL,
  APPARMOR_LABEL,
  type AppArmorLabelValue,
  PROFILE_KINDS,
  type ProfileKind,
  SYNCED_REVISION_LABEL,
} from "../src/api/constants.ts";
import { isLockstepLabelKey } from "../src/api/labels.ts";

export interface NodeLabelState {
  /** The profile revision per kind up to which the disk and the kernel were verified. */
  revisions: Readonly<Record<ProfileKind, string>>;
  /** Failure label key -> reason, for each profile that belongs here and is not installed. */
  failed: ReadonlyMap<string, string>;
  /** Selector-synced label key -> the node's value it placed profiles by. */
  selectorSynced: ReadonlyMap<string, string>;
  appArmor: AppArmorLabelValue;
  /** The agent's version once start-up reconciliation is done; undefined before. */
  agentVersion: string | undefined;
}

export function desiredLockstepLabels(state: NodeLabelState): Record<string, string> {
  const labels: Record<string, string> = {
    ...Object.fromEntries(state.failed),
    ...Object.fromEntries(state.selectorSynced),
  };
  for (const kind of PROFILE_KINDS) labels[SYNCED_REVISION_LABEL[kind]] = state.revisions[kind];
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
