// A profile's status as a pure function of the profile and the Node labels (plus the agents' reports of
// why a node could not install it). The controller writes the result only when it differs.
import { isDeepStrictEqual } from "node:util";
import { type Condition, MAX_MISSING_NODES, type ProfilePhase, type ProfileStatus } from "../api/common.ts";
import { localhostProfileFor } from "../api/labels.ts";
import { nodeCountsForProfile, type RenderedProfile } from "../api/profiles.ts";

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
  generation: number | undefined;
  deleting: boolean;
  nodes: readonly NodeView[];
  /** node name -> latest failure report for this profile. */
  failures: ReadonlyMap<string, InstallFailure>;
  previous: ProfileStatus | undefined;
  now: Date;
}

export function computeStatus(input: StatusInput): ProfileStatus {
  const { profile } = input;
  const desired = input.nodes.filter((n) => nodeCountsForProfile(profile, n.labels));
  const version = profile.ok ? profile.version : undefined;
  const installed =
    version === undefined ? [] : desired.filter((n) => n.labels[profile.labelKey] === version);
  const missing = desired
    .filter((n) => !installed.includes(n))
    .map((n) => {
      const failure = input.failures.get(n.name);
      const current = failure && (failure.version === "" || failure.version === version);
      return {
        node: n.name,
        reason: current ? failure.message : "not installed yet",
        failed: Boolean(current),
      };
    })
    .sort((a, b) => Number(b.failed) - Number(a.failed) || a.node.localeCompare(b.node));

  let phase: ProfilePhase;
  let ready: { status: "True" | "False"; reason: string; message: string };
  if (input.deleting) {
    phase = "Terminating";
    ready = {
      status: "False",
      reason: "Terminating",
      message: "the profile is being deleted; it stays installed while pods use it",
    };
  } else if (!profile.ok) {
    phase = "Invalid";
    ready = { status: "False", reason: profile.reason, message: profile.message };
  } else if (desired.length === 0) {
    phase = "Pending";
    ready = {
      status: "False",
      reason: "NoMatchingNodes",
      message: profile.disabled
        ? "the profile is disabled"
        : "no node with a ready Lockstep agent matches this profile yet",
    };
  } else if (installed.length === desired.length) {
    phase = "Installed";
    ready = { status: "True", reason: "Installed", message: `installed on all ${desired.length} nodes` };
  } else if (missing.some((m) => m.failed)) {
    phase = "Degraded";
    ready = {
      status: "False",
      reason: "InstallFailed",
      message: `installed on ${installed.length} of ${desired.length} nodes; ${missing.filter((m) => m.failed).length} failed`,
    };
  } else {
    phase = "Installing";
    ready = {
      status: "False",
      reason: "Installing",
      message: `installed on ${installed.length} of ${desired.length} nodes`,
    };
  }

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
    ...(version === undefined ? {} : { version }),
    localhostProfile: localhostProfileFor(profile.kind, profile.name),
    ready: `${installed.length}/${desired.length}`,
    nodes: { installed: installed.length, desired: desired.length },
    missingNodes: missing.slice(0, MAX_MISSING_NODES).map(({ node, reason }) => ({ node, reason })),
    conditions: [condition],
  };
}

/** Whether writing `next` would change anything a reader can see. */
export function statusDiffers(previous: ProfileStatus | undefined, next: ProfileStatus): boolean {
  return !isDeepStrictEqual(previous ?? {}, next);
}
