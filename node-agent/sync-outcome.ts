// What a sync concludes once the plan is carried out and the disk and kernel read back: which profiles
// are installed, the failure labels within the cap, which failures get an install report, and the
// Lockstep labels this Node should carry. Pure.
import { AGENT_LABEL, type ProfileKind } from "../src/api/constants.ts";
import { failedLabelKey } from "../src/api/labels.ts";
import type { InstallFailure } from "./failures.ts";
import {
  appArmorLabelValue,
  type BoundedFailures,
  boundFailureLabels,
  desiredLockstepLabels,
} from "./node-labels.ts";
import {
  failedProfiles,
  failureLabels,
  installedProfiles,
  type NodeObservation,
  type SyncPlan,
  selectorSyncedLabels,
  syncedRevisions,
} from "./planner.ts";

/** Whether carrying the plan out touched the disk or the kernel, which then must be read again. */
export function planActsOnNode(plan: SyncPlan): boolean {
  return (
    plan.writeSeccomp.length +
      plan.removeSeccomp.length +
      plan.loadAppArmor.length +
      plan.unloadAppArmor.length >
    0
  );
}

export interface SyncOutcome {
  bounded: BoundedFailures;
  /** The failures to report: those that carry a failure label (past the cap they are summed up). */
  reported: InstallFailure[];
  installed: Record<ProfileKind, number>;
  /** The Lockstep labels this Node should carry now. */
  desired: Record<string, string>;
}

export interface AgentState {
  appArmorAvailable: boolean;
  /** Start-up reconciliation is done: the agent may claim readiness. */
  reconciled: boolean;
  version: string;
}

/** `after`: the observation read back after the plan was carried out. */
export function syncOutcome(
  after: NodeObservation,
  plan: SyncPlan,
  failures: readonly InstallFailure[],
  cap: number,
  agent: AgentState,
): SyncOutcome {
  const installed = installedProfiles(after);
  const count = (kind: ProfileKind) => [...installed.keys()].filter((k) => k.startsWith(`${kind}.`)).length;
  const bounded = boundFailureLabels(
    failureLabels(after, failedProfiles(after, installed, [...failures], plan)),
    syncedRevisions(after),
    cap,
  );
  const desired = desiredLockstepLabels({
    revisions: bounded.revisions,
    failed: bounded.failed,
    selectorSynced: selectorSyncedLabels(after),
    appArmor: appArmorLabelValue(agent.appArmorAvailable),
    // Before start-up reconciliation finishes the agent does not claim readiness, but it does not
    // withdraw an earlier run's claim either: a restart must not make the node flap out of status.
    agentVersion: agent.reconciled ? agent.version : after.nodeLabels[AGENT_LABEL],
  });
  return {
    bounded,
    reported: failures.filter((f) => bounded.failed.has(failedLabelKey(f.profile.kind, f.profile.name))),
    installed: { seccomp: count("seccomp"), apparmor: count("apparmor") },
    desired,
  };
}
