// A profile's status as a pure function of the profile and the Node labels (plus the agents' reports of
// why a node could not install it). The controller writes the result only when it differs.
import { isDeepStrictEqual } from "node:util";
import { type Condition, MAX_MISSING_NODES, type ProfilePhase, type ProfileStatus } from "../api/common.ts";
import { AGENT_LABEL, API_VERSION, APPARMOR_LABEL, OBJECT_KIND, type ProfileKind } from "../api/constants.ts";
import { INSTALL_FAILED } from "../api/install-report.ts";
import { failedLabelKey, localhostProfileFor } from "../api/labels.ts";
import { isRevision, nodeProfileState, type ProfilePlacement } from "../api/node-profiles.ts";
import { nodeCountsForProfile, profileBelongsOnNode, type RenderedProfile } from "../api/profiles.ts";
import type { EventFields } from "../kube/event-recorder.ts";

export interface NodeView {
  name: string;
  labels: Readonly<Record<string, string>>;
}

/** An agent's latest InstallFailed report for one node: the version it tried and why it failed. */
export interface InstallFailure {
  version: string;
  message: string;
}

export interface StatusInput {
  profile: RenderedProfile;
  /** renderingRevision of the object: what nodes must have reached, over its inheritance chain. */
  revision: string;
  /** profileRevision of the object with its previous status: what status.revision records. */
  ownRevision: string;
  generation: number | undefined;
  deleting: boolean;
  nodes: readonly NodeView[];
  /** Pods (namespace/name) that keep a Terminating profile from going away; only read when deleting. */
  inUseBy?: readonly string[];
  /** node name -> latest failure report for this profile. */
  failures: ReadonlyMap<string, InstallFailure>;
  previous: ProfileStatus | undefined;
  now: Date;
}

export function computeStatus(input: StatusInput): ProfileStatus {
  const { profile } = input;
  const desired = input.nodes.filter((n) => nodeCountsForProfile(profile, n.labels));
  const version = profile.ok ? profile.version : undefined;
  const placement: ProfilePlacement = {
    kind: profile.kind,
    name: profile.name,
    revision: input.revision,
    nodeSelector: profile.nodeSelector,
    disabled: profile.disabled,
  };
  // The same reading of the labels as the webhook's affinity (node-profiles.ts): "installed" here is
  // exactly "the scheduler may place a pod that needs it there".
  const installed = new Set(
    version === undefined ? [] : desired.filter((n) => nodeProfileState(placement, n.labels) === "installed"),
  );
  const failedKey = failedLabelKey(profile.kind, profile.name);
  const missing = desired
    .filter((n) => !installed.has(n))
    .map((n) => {
      const failure = input.failures.get(n.name);
      const current = failure !== undefined && (failure.version === "" || failure.version === version);
      const labelled = n.labels[failedKey];
      // Whether a node failed is its agent's word on its own Node: a label only that node's agent can
      // write (the agent's admission policy). An Event is anyone's to create wherever RBAC grants Events,
      // so it only explains a failure the label states.
      const failed = labelled !== undefined;
      return {
        node: n.name,
        reason:
          failed && current
            ? failure.message
            : labelled !== undefined
              ? `${labelled} (see the agent's InstallFailed Event)`
              : "not installed yet",
        failed,
      };
    })
    // Failures first, then by name, so the capped list is stable and shows what needs attention.
    // (Plain comparison: localeCompare is too slow for thousands of nodes per profile.)
    .sort((a, b) => Number(b.failed) - Number(a.failed) || (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));

  const failed = missing.filter((m) => m.failed).length;
  const phase = profilePhase({
    deleting: input.deleting,
    valid: profile.ok,
    desired: desired.length,
    installed: installed.size,
    failed,
  });
  const ready = readyCondition(phase, profile, installed.size, desired.length, failed, input);

  const previousReady = input.previous?.conditions?.find((c) => c.type === "Ready");
  const unchanged = previousReady?.status === ready.status && previousReady.reason === ready.reason;
  const condition: Condition = {
    type: "Ready",
    ...ready,
    observedGeneration: input.generation,
    lastTransitionTime:
      unchanged && previousReady ? previousReady.lastTransitionTime : input.now.toISOString(),
  } as Condition;

  return {
    phase,
    observedGeneration: input.generation,
    // Never an unparseable one (UNKNOWN_REVISION): the CRD's pattern would refuse the whole status.
    ...(isRevision(input.ownRevision) ? { revision: input.ownRevision } : {}),
    ...(version === undefined ? {} : { version }),
    localhostProfile: localhostProfileFor(profile.kind, profile.name),
    ready: `${installed.size}/${desired.length}`,
    nodes: { installed: installed.size, desired: desired.length },
    missingNodes: missing.slice(0, MAX_MISSING_NODES).map(({ node, reason }) => ({ node, reason })),
    conditions: [condition],
  };
}

/**
 * How long the first status of a new generation may still be held back, while the agents install it.
 * A rollout that ends within the window is announced once, as Installed, instead of Installing then
 * Installed: one status write less per rollout (every agent's claim wakes the profile at once, so
 * holding never delays Installed). Only Installing waits: Pending, Invalid and Degraded are news at once
 * (DESIGN invariant 8). Until the first status of the generation, its revision is the object's own
 * resourceVersion (ADR 0024), which is why the controller also adds the in-use finalizer only after it.
 */
export const FIRST_STATUS_HOLD_MS = 250;

export function firstStatusHoldMs(
  previous: ProfileStatus | undefined,
  next: ProfileStatus,
  sinceFirstSeenMs: number,
): number {
  if (next.phase !== "Installing") return 0;
  if (previous !== undefined && previous.observedGeneration === next.observedGeneration) return 0;
  return Math.max(0, FIRST_STATUS_HOLD_MS - sinceFirstSeenMs);
}

/** Whether writing `next` would change anything a reader can see. */
export function statusDiffers(previous: ProfileStatus | undefined, next: ProfileStatus): boolean {
  return !isDeepStrictEqual(previous ?? {}, next);
}

export interface PhaseInput {
  deleting: boolean;
  /** The spec parsed, its base chain resolved and its policy rendered. */
  valid: boolean;
  /** Nodes the profile belongs on whose agent is ready. */
  desired: number;
  /** Desired nodes whose label carries the current version. */
  installed: number;
  /** Desired nodes without the current version whose agent reported InstallFailed for it. */
  failed: number;
}

/**
 * The phase, first rule that applies wins:
 * - Terminating: deletionTimestamp is set (the in-use finalizer may be holding it);
 * - Invalid: the spec cannot be rendered (bad spec, missing base, inheritance cycle);
 * - Pending: no node is desired yet (no ready agent matches, or the profile is disabled);
 * - Installed: every desired node carries the current version;
 * - Degraded: some desired node lacks it and its agent reported InstallFailed for this version;
 * - Installing: some desired nodes lack it, and none has reported a failure.
 */
export function profilePhase(p: PhaseInput): ProfilePhase {
  if (p.deleting) return "Terminating";
  if (!p.valid) return "Invalid";
  if (p.desired === 0) return "Pending";
  if (p.installed === p.desired) return "Installed";
  if (p.failed > 0) return "Degraded";
  return "Installing";
}

function readyCondition(
  phase: ProfilePhase,
  profile: RenderedProfile,
  installed: number,
  desired: number,
  failed: number,
  { inUseBy = [], nodes }: Pick<StatusInput, "inUseBy" | "nodes">,
): { status: "True" | "False"; reason: string; message: string } {
  switch (phase) {
    case "Terminating":
      return inUseBy.length === 0
        ? { status: "False", reason: "Terminating", message: "the profile is being deleted" }
        : {
            status: "False",
            reason: "InUse",
            message: `the profile is being deleted; it stays installed until no pod uses it (in use by ${inUseBy.join(", ")})`,
          };
    case "Invalid":
      return profile.ok
        ? { status: "False", reason: "Invalid", message: "invalid" }
        : { status: "False", reason: profile.reason, message: profile.message };
    case "Pending":
      return pendingCondition(profile, nodes);
    case "Installed":
      return { status: "True", reason: "Installed", message: `installed on all ${desired} nodes` };
    case "Degraded":
      return {
        status: "False",
        reason: INSTALL_FAILED,
        message: `installed on ${installed} of ${desired} nodes; ${failed} failed (see status.missingNodes)`,
      };
    case "Installing":
      return {
        status: "False",
        reason: "Installing",
        message: `installed on ${installed} of ${desired} nodes`,
      };
  }
}

/**
 * Why a profile belongs on no node, in the words an operator acts on: the profile is disabled, no agent
 * is ready anywhere, none matches its nodeSelector, or (AppArmor) every matching node's kernel lacks
 * AppArmor, which no waiting fixes: pods that use the profile stay Pending until such a node joins.
 */
export function pendingCondition(
  profile: Pick<RenderedProfile, "kind" | "disabled" | "nodeSelector">,
  nodes: readonly NodeView[],
): { status: "False"; reason: string; message: string } {
  if (profile.disabled) return { status: "False", reason: "Disabled", message: "the profile is disabled" };
  const agents = nodes.filter((n) => n.labels[AGENT_LABEL] !== undefined);
  if (agents.length === 0)
    return { status: "False", reason: "NoMatchingNodes", message: "no node has a ready Lockstep agent yet" };
  const matching = agents.filter((n) => profileBelongsOnNode({ ...profile, kind: "seccomp" }, n.labels));
  if (matching.length === 0)
    return {
      status: "False",
      reason: "NoMatchingNodes",
      message: `none of the ${agents.length} nodes with a ready Lockstep agent matches the profile's nodeSelector`,
    };
  return {
    status: "False",
    reason: "AppArmorUnavailable",
    message: `${matching.length} of the ${agents.length} nodes with a ready Lockstep agent match the profile, and none of them has AppArmor (${APPARMOR_LABEL}=unavailable): pods that use it stay Pending until a node with AppArmor joins`,
  };
}

/**
 * The merge patch that turns `previous` into `next`: top-level fields `next` no longer has are set
 * to null (a merge patch keeps what it does not mention), e.g. `version` once a profile turns Invalid.
 */
export function statusMergePatch(previous: ProfileStatus | undefined, next: ProfileStatus): object {
  const patch: Record<string, unknown> = { ...next };
  for (const key of Object.keys(previous ?? {})) if (!(key in next)) patch[key] = null;
  return { status: patch };
}

/**
 * Whether a phase change is worth a Kubernetes Event, which a cluster operator reads in
 * `kubectl describe`: a profile going wrong (Degraded, Invalid, held by pods while Terminating) or
 * recovering from that. The routine Pending -> Installing -> Installed of every rollout is in status
 * alone: an Event for it would cost one more API write per profile per rollout and say nothing new.
 */
export function phaseChangeNeedsEvent(previous: ProfilePhase | undefined, next: ProfilePhase): boolean {
  if (next === previous || next === "Pending" || next === "Installing") return false;
  if (next === "Installed") return previous === "Degraded" || previous === "Invalid";
  return true;
}

/** The Event that announces a phase change (phaseChangeNeedsEvent says which do). */
export function phaseEventFields(
  kind: ProfileKind,
  obj: { name: string; uid?: string | undefined },
  status: ProfileStatus,
): EventFields {
  const ready = status.conditions?.find((c) => c.type === "Ready");
  return {
    involvedObject: { apiVersion: API_VERSION, kind: OBJECT_KIND[kind], name: obj.name, uid: obj.uid },
    reason: ready?.reason ?? status.phase ?? "",
    message: ready?.message ?? status.phase ?? "",
    type: status.phase === "Installed" ? "Normal" : "Warning",
  };
}

/** What a reconcile does with the status it computed: wait, nothing, or write the difference. */
export type StatusWrite =
  /** Not yet: this generation's first status is held back this long (status-hold.ts). */
  | { holdMs: number }
  /** Nothing: the object carries this status already. */
  | { patch: undefined }
  /** The merge patch to send; `phaseChanged`: worth a log line, `event`: worth an Event too. */
  | { patch: object; phaseChanged: boolean; event: boolean };

/** `holdMs`: what FirstStatusHold says for `next`. */
export function statusWrite(
  previous: ProfileStatus | undefined,
  next: ProfileStatus,
  holdMs: number,
): StatusWrite {
  if (holdMs > 0) return { holdMs };
  if (!statusDiffers(previous, next)) return { patch: undefined };
  const phaseChanged = next.phase !== previous?.phase;
  const event =
    phaseChanged && next.phase !== undefined && phaseChangeNeedsEvent(previous?.phase, next.phase);
  return { patch: statusMergePatch(previous, next), phaseChanged, event };
}

/** How many profiles are in each phase; one without a status yet counts as Pending. */
export function phaseCounts(statuses: Iterable<ProfileStatus | undefined>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const status of statuses) {
    const phase = status?.phase ?? "Pending";
    counts.set(phase, (counts.get(phase) ?? 0) + 1);
  }
  return counts;
}
