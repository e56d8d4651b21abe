// The agent's decisions, as pure functions of what it observed: which seccomp files to write or
// remove, which AppArmor profiles to load or unload, what to report, and which labels the node has
// earned. agent.ts observes and carries the plan out; nothing here does I/O.
//
// The rules, each a DESIGN invariant:
// - 1: a label only for a profile that is really there: its file holds the current content, or the
//   kernel lists it and the agent's record says it loaded the current version.
// - 6: a profile that no longer belongs on the node (deleted, disabled, nodeSelector, node relabelled)
//   loses its label at once, but its file stays and its AppArmor profile stays loaded while a
//   not-finished pod bound to this node carries its label (the webhook's in-use label).
// - 8: a profile that belongs here but is invalid keeps its last good file or loaded version.
// - 9: the agent replaces or removes only what its ownership record lists; a name someone else holds
//   is reported (NameTaken) and gets no label.
// Labels (docs/adr/0024-node-labels-that-scale.md): one revision per kind, the newest profile revision
// the observation covers, and a failure label for each profile that belongs here but is not installed
// at its current version, so "revision reached and no failure label" means "installed".

import { IN_USE_LABEL_VALUE } from "../src/api/affinity.ts";
import { type AppArmorMode, DEFAULT_APPARMOR_MODE } from "../src/api/apparmor.ts";
import { PROFILE_KINDS, type ProfileKind } from "../src/api/constants.ts";
import { failedLabelKey, profileLabelKey, selectorSyncedLabelKey } from "../src/api/labels.ts";
import { MAX_FAILURE_LABELS_PER_KIND } from "../src/api/limits.ts";
import { maxRevision } from "../src/api/node-profiles.ts";
import { profileBelongsOnNode, type RenderedProfile } from "../src/api/profiles.ts";
import { INSTALL_FAILURE_REASONS, type InstallFailure } from "./failures.ts";
import type { FailureLabel } from "./node-labels.ts";
import type { OwnershipRecord } from "./ownership-record.ts";
import { type SeccompDirState, seccompFileName } from "./seccomp-dir.ts";

export type InstallableProfile = Extract<RenderedProfile, { ok: true }>;

export interface NodeObservation {
  /** This Node's labels, with the agent's own view of AppArmor (`lockstep.dev/apparmor`). */
  nodeLabels: Readonly<Record<string, string>>;
  seccompProfiles: readonly RenderedProfile[];
  appArmorProfiles: readonly RenderedProfile[];
  appArmorAvailable: boolean;
  disk: SeccompDirState;
  /** Names the kernel lists as loaded (empty without AppArmor). */
  kernel: ReadonlySet<string>;
  record: OwnershipRecord;
  /** The labels of every not-finished pod bound to this node. */
  podLabels: readonly Readonly<Record<string, string>>[];
  /**
   * Per kind, a revision the caches have seen every write up to, beyond the profiles in them: the
   * resourceVersion they were listed at, and what the agent claimed before in this run.
   */
  revisionFloor: Readonly<Record<ProfileKind, string>>;
}

export interface SyncPlan {
  writeSeccomp: { profile: InstallableProfile; content: string }[];
  removeSeccomp: string[];
  loadAppArmor: { profile: InstallableProfile; text: string; mode: AppArmorMode }[];
  unloadAppArmor: string[];
  /** Record entries for what is gone already (a file deleted by hand, a profile someone unloaded). */
  forgetSeccomp: string[];
  forgetAppArmor: string[];
  /** Kept only because a pod bound to this node still uses it. */
  keptInUse: { kind: ProfileKind; name: string }[];
  failures: InstallFailure[];
  /**
   * Failure label key -> NoLongerHere, to publish before anything is removed or unloaded (invariant 6):
   * until that PATCH the node still claims each profile, and a pod admitted before the change may be
   * placed there in between and fail on the missing file or kernel profile.
   */
  markBeforeRemoving: Map<string, string>;
  /**
   * Kept because the node has no room left for their NoLongerHere marks (at most the failure-label
   * cap of marks for profiles that are gone): while its file stays or it stays loaded, a pod admitted
   * before it moved away finds it here, so it needs no mark. Removed once marks free up.
   */
  keptForRoom: { kind: ProfileKind; name: string }[];
}

function nodeArch(o: NodeObservation): string | undefined {
  return o.nodeLabels["kubernetes.io/arch"];
}

function belonging(profiles: readonly RenderedProfile[], o: NodeObservation): RenderedProfile[] {
  return profiles.filter((p) => profileBelongsOnNode(p, o.nodeLabels));
}

function usedByPodHere(o: NodeObservation, kind: ProfileKind, name: string): boolean {
  const key = profileLabelKey(kind, name);
  return o.podLabels.some((labels) => labels[key] === IN_USE_LABEL_VALUE);
}

/**
 * The record to start from when there is none: profile files already in the folder were written by an
 * agent from before the record (the folder is Lockstep's by contract), so they are adopted. AppArmor
 * profiles are not: the kernel cannot say who loaded them, and the agent never unloads what it
 * cannot prove is its own.
 */
export function adoptedRecord(disk: SeccompDirState): OwnershipRecord {
  return { seccomp: [...disk.files.keys()], appArmor: {} };
}

export function planSync(o: NodeObservation, markCap = MAX_FAILURE_LABELS_PER_KIND): SyncPlan {
  const plan: SyncPlan = {
    writeSeccomp: [],
    removeSeccomp: [],
    loadAppArmor: [],
    unloadAppArmor: [],
    forgetSeccomp: [],
    forgetAppArmor: [],
    keptInUse: [],
    failures: [],
    markBeforeRemoving: new Map(),
    keptForRoom: [],
  };
  planSeccomp(o, plan);
  if (o.appArmorAvailable) planAppArmor(o, plan);
  keepWhatCannotBeMarked(o, plan, markCap);
  plan.markBeforeRemoving = marksBeforeRemoving(o, plan);
  return plan;
}

/**
 * A profile that moved away and is gone from the node is unclaimed only by its NoLongerHere mark (a pod
 * admitted before the move requires some older revision), so a removal needs room for its mark: at most
 * `cap` such marks per kind (src/api/limits.ts). Past that, a removal waits and the profile stays
 * installed (keptForRoom); removals of deleted objects need no mark and always go ahead.
 */
function keepWhatCannotBeMarked(o: NodeObservation, plan: SyncPlan, cap: number): void {
  const lists: [ProfileKind, "removeSeccomp" | "unloadAppArmor", readonly RenderedProfile[]][] = [
    ["seccomp", "removeSeccomp", o.seccompProfiles],
    ["apparmor", "unloadAppArmor", o.appArmorProfiles],
  ];
  for (const [kind, list, profiles] of lists) {
    const objects = new Set(profiles.map((p) => p.name));
    const present = (name: string) => (kind === "seccomp" ? o.disk.files.has(name) : o.kernel.has(name));
    let marked = profiles.filter(
      (p) =>
        !profileBelongsOnNode(p, o.nodeLabels) &&
        !present(p.name) &&
        o.nodeLabels[failedLabelKey(kind, p.name)] === NO_LONGER_HERE,
    ).length;
    const allowed: string[] = [];
    for (const name of plan[list]) {
      if (!objects.has(name)) allowed.push(name);
      else if (marked < cap) {
        marked++;
        allowed.push(name);
      } else plan.keptForRoom.push({ kind, name });
    }
    plan[list] = allowed;
  }
}

/**
 * The NoLongerHere marks for profiles the plan removes or unloads while their object exists, unless the
 * node carries the mark already. A deleted object needs none: the webhook admits no pod that names
 * it, and the in-use finalizer kept it while any pod did.
 */
function marksBeforeRemoving(o: NodeObservation, plan: SyncPlan): Map<string, string> {
  const existing = (profiles: readonly RenderedProfile[]) => new Set(profiles.map((p) => p.name));
  const removed: [ProfileKind, string[], Set<string>][] = [
    ["seccomp", plan.removeSeccomp, existing(o.seccompProfiles)],
    ["apparmor", plan.unloadAppArmor, existing(o.appArmorProfiles)],
  ];
  const marks = new Map<string, string>();
  for (const [kind, names, objects] of removed)
    for (const name of names) {
      const key = failedLabelKey(kind, name);
      if (objects.has(name) && o.nodeLabels[key] !== NO_LONGER_HERE) marks.set(key, NO_LONGER_HERE);
    }
  return marks;
}

/**
 * The names of the profiles that belong here, and those of them that can be installed. One that belongs
 * but cannot be rendered is reported, and its name stays wanted: it keeps what is installed (invariant 8).
 */
function belongingHere(
  profiles: readonly RenderedProfile[],
  o: NodeObservation,
  plan: SyncPlan,
): { wanted: Set<string>; installable: InstallableProfile[] } {
  const wanted = new Set<string>();
  const installable: InstallableProfile[] = [];
  for (const profile of belonging(profiles, o)) {
    wanted.add(profile.name);
    if (profile.ok) installable.push(profile);
    else plan.failures.push({ profile, reason: profile.reason, message: profile.message });
  }
  return { wanted, installable };
}

function planSeccomp(o: NodeObservation, plan: SyncPlan): void {
  const owned = new Set(o.record.seccomp);
  const { wanted, installable } = belongingHere(o.seccompProfiles, o, plan);
  for (const profile of installable) {
    const file = seccompFileName(profile.name);
    const unusable = o.disk.unusable.get(file);
    const foreign =
      unusable ?? (o.disk.files.has(profile.name) && !owned.has(profile.name) ? "a file" : undefined);
    if (foreign !== undefined) {
      plan.failures.push({
        profile,
        reason: INSTALL_FAILURE_REASONS.nameTaken,
        message: `${file} in the agent's folder is ${foreign} that the agent did not write; it is left alone: remove it from the node, or give the object another name`,
      });
      continue;
    }
    const content = profile.contentFor(nodeArch(o));
    if (o.disk.files.get(profile.name) !== content) plan.writeSeccomp.push({ profile, content });
  }
  for (const name of owned) {
    if (wanted.has(name)) continue;
    if (!o.disk.files.has(name)) plan.forgetSeccomp.push(name);
    else if (usedByPodHere(o, "seccomp", name)) plan.keptInUse.push({ kind: "seccomp", name });
    else plan.removeSeccomp.push(name);
  }
}

function planAppArmor(o: NodeObservation, plan: SyncPlan): void {
  const { wanted, installable } = belongingHere(o.appArmorProfiles, o, plan);
  for (const profile of installable) {
    const ours = Object.hasOwn(o.record.appArmor, profile.name);
    const loaded = o.kernel.has(profile.name);
    if (loaded && !ours) {
      plan.failures.push({
        profile,
        reason: INSTALL_FAILURE_REASONS.nameTaken,
        message: `an AppArmor profile named "${profile.name}" is already loaded on this node and Lockstep did not load it (the container runtime's, a distribution's, or one loaded by hand); Lockstep never replaces it: give the object another name`,
      });
      continue;
    }
    if (!loaded || o.record.appArmor[profile.name] !== profile.version)
      plan.loadAppArmor.push({
        profile,
        text: profile.contentFor(undefined),
        mode: profile.appArmorMode ?? DEFAULT_APPARMOR_MODE,
      });
  }
  for (const name of Object.keys(o.record.appArmor)) {
    if (wanted.has(name)) continue;
    if (!o.kernel.has(name)) plan.forgetAppArmor.push(name);
    else if (usedByPodHere(o, "apparmor", name)) plan.keptInUse.push({ kind: "apparmor", name });
    else plan.unloadAppArmor.push(name);
  }
}

/** Label key -> version for every profile that belongs here and is really installed (invariant 1). */
export function installedProfiles(o: NodeObservation): Map<string, string> {
  const installed = new Map<string, string>();
  const owned = new Set(o.record.seccomp);
  for (const p of belonging(o.seccompProfiles, o))
    if (p.ok && owned.has(p.name) && o.disk.files.get(p.name) === p.contentFor(nodeArch(o)))
      installed.set(p.labelKey, p.version);
  if (o.appArmorAvailable)
    for (const p of belonging(o.appArmorProfiles, o))
      if (p.ok && o.kernel.has(p.name) && o.record.appArmor[p.name] === p.version)
        installed.set(p.labelKey, p.version);
  return installed;
}

/**
 * Failure label key -> reason, for every profile that belongs here and is not installed (invariant 1),
 * and for every profile that stopped belonging here (disabled, nodeSelector, node relabelled) after
 * being installed or marked here: a pod admitted before that change still requires the old placement,
 * which this node may match, so the mark stays while the object exists and does not belong here.
 */
export function failedProfiles(
  o: NodeObservation,
  installed: ReadonlyMap<string, string>,
  failures: readonly InstallFailure[],
  plan: Pick<SyncPlan, "removeSeccomp" | "unloadAppArmor" | "keptInUse">,
): Map<string, string> {
  const reasons = new Map(failures.map((f) => [`${f.profile.kind}/${f.profile.name}`, f.reason]));
  const movedAway = new Set([
    ...plan.removeSeccomp.map((name) => `seccomp/${name}`),
    ...plan.unloadAppArmor.map((name) => `apparmor/${name}`),
    ...plan.keptInUse.map(({ kind, name }) => `${kind}/${name}`),
  ]);
  const failed = new Map<string, string>();
  const kinds = o.appArmorAvailable ? [o.seccompProfiles, o.appArmorProfiles] : [o.seccompProfiles];
  for (const profiles of kinds)
    for (const p of profiles) {
      const key = failedLabelKey(p.kind, p.name);
      if (profileBelongsOnNode(p, o.nodeLabels)) {
        if (!installed.has(p.labelKey)) failed.set(key, reasons.get(`${p.kind}/${p.name}`) ?? NOT_INSTALLED);
      } else if (movedAway.has(`${p.kind}/${p.name}`) || o.nodeLabels[key] !== undefined)
        failed.set(key, NO_LONGER_HERE);
    }
  return failed;
}

/**
 * failedProfiles' labels, each with its profile's kind and revision, and for a NoLongerHere mark whether
 * the profile is still on the node (for boundFailureLabels).
 */
export function failureLabels(o: NodeObservation, failed: ReadonlyMap<string, string>): FailureLabel[] {
  const out: FailureLabel[] = [];
  for (const p of [...o.seccompProfiles, ...o.appArmorProfiles]) {
    const key = failedLabelKey(p.kind, p.name);
    const reason = failed.get(key);
    if (reason === undefined) continue;
    const present = p.kind === "seccomp" ? o.disk.files.has(p.name) : o.kernel.has(p.name);
    out.push({
      kind: p.kind,
      name: p.name,
      key,
      reason,
      revision: p.revision,
      stillHere: reason === NO_LONGER_HERE && present,
    });
  }
  return out;
}

/** The mark of a profile that stopped belonging on this node (see failedProfiles). */
export const NO_LONGER_HERE = "NoLongerHere";

/** The failure label's value when no failure was reported this sync (say, a file deleted meanwhile). */
export const NOT_INSTALLED = "NotInstalled";

/**
 * The revision this node can claim per kind: every profile in the observation was acted on, so the
 * newest revision among them; never less than the observation's floor. It does not move with status
 * writes (profileRevision ignores them), so a status write costs no Node PATCH.
 */
export function syncedRevisions(o: NodeObservation): Record<ProfileKind, string> {
  const floor = o.revisionFloor;
  const profiles = { seccomp: o.seccompProfiles, apparmor: o.appArmorProfiles };
  const out = { seccomp: "0", apparmor: "0" };
  for (const kind of PROFILE_KINDS)
    out[kind] = maxRevision([floor[kind], ...profiles[kind].map((p) => p.revision)]);
  return out;
}

/**
 * For each label key some profile's nodeSelector names and this node has: the value this sync
 * placed profiles by. Until the agent syncs again after a relabel, pods keep to the old value.
 */
export function selectorSyncedLabels(o: NodeObservation): Map<string, string> {
  const out = new Map<string, string>();
  for (const p of [...o.seccompProfiles, ...o.appArmorProfiles])
    for (const key of Object.keys(p.nodeSelector ?? {})) {
      const value = o.nodeLabels[key];
      if (value !== undefined) out.set(selectorSyncedLabelKey(key), value);
    }
  return out;
}
