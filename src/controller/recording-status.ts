// What the recording controller writes into a ProfileRecording's status at each step
// (docs/adr/0039-profile-recording.md), as merge patches of the controller's own fields: status.nodes is
// the agents' (each its own entry) and never appears here. Pure.
import type { Condition } from "../api/common.ts";
import { RECORDING_LIMITS } from "../api/limits.ts";
import type {
  ProfileRecordingStatus,
  RecordingNodeEntry,
  RecordingSummary,
} from "../api/profile-recording.ts";
import { summarizeRecording } from "../api/profile-recording.ts";

/** The condition types a recording carries. */
export const RECORDING_CONDITIONS = {
  /** True while new pods are recorded; False with why it ended. */
  recording: "Recording",
  /** True once the results are written; False with what kept one from being written. */
  profilesWritten: "ProfilesWritten",
  /** True when a node hit a cap and dropped calls: the result may miss some. */
  truncated: "Truncated",
  /** restartPods: what was deleted, and what was left alone because nothing would recreate it. */
  podsRestarted: "PodsRestarted",
} as const;

export interface ConditionChange {
  type: string;
  status: "True" | "False";
  reason: string;
  message: string;
}

/** The conditions with `changes` applied: a condition keeps its lastTransitionTime while its status stays. */
export function withConditions(
  previous: readonly Condition[] | undefined,
  changes: readonly ConditionChange[],
  now: Date,
): Condition[] {
  const out = [...(previous ?? [])];
  for (const change of changes) {
    const at = out.findIndex((c) => c.type === change.type);
    const old = at === -1 ? undefined : out[at];
    const next: Condition = {
      ...change,
      lastTransitionTime: old && old.status === change.status ? old.lastTransitionTime : now.toISOString(),
    };
    if (at === -1) out.push(next);
    else out[at] = next;
  }
  return out;
}

type Summary = Pick<ProfileRecordingStatus, "podsRecorded" | "nodesReporting" | "eventsSeen" | "syscalls">;

const summaryOf = (s: RecordingSummary): Summary => ({
  podsRecorded: s.podsRecorded,
  nodesReporting: s.nodesReporting,
  eventsSeen: s.eventsSeen,
  syscalls: s.syscalls,
});

function truncation(s: RecordingSummary): ConditionChange[] {
  if (s.truncatedNodes.length === 0) return [];
  return [
    {
      type: RECORDING_CONDITIONS.truncated,
      status: "True",
      reason: "NodeCapReached",
      message: `nodes ${s.truncatedNodes.join(", ")} reached a cap (${RECORDING_LIMITS.containersPerNode} containers or ${RECORDING_LIMITS.syscallNamesPerNode} syscall names per node) and dropped calls beyond it: the recorded profiles may miss some; record fewer pods per node`,
    },
  ];
}

/**
 * The summary of the agents' entries, as a patch when it differs from what status says (with the
 * Truncated condition when a node hit a cap), else undefined.
 */
export function summaryPatch(
  status: ProfileRecordingStatus | undefined,
  nodes: readonly RecordingNodeEntry[],
  now: Date,
): ProfileRecordingStatus | undefined {
  const summary = summarizeRecording(nodes);
  const next = summaryOf(summary);
  const truncated = truncation(summary);
  const conditionsChange =
    truncated.length > 0 && !status?.conditions?.some((c) => c.type === RECORDING_CONDITIONS.truncated);
  const same = (Object.keys(next) as (keyof Summary)[]).every((k) => status?.[k] === next[k]);
  if (same && !conditionsChange) return undefined;
  return {
    ...next,
    ...(conditionsChange ? { conditions: withConditions(status?.conditions, truncated, now) } : {}),
  };
}

export function startedPatch(
  status: ProfileRecordingStatus | undefined,
  recorderProfile: string,
  now: Date,
): ProfileRecordingStatus {
  return {
    phase: "Recording",
    startedAt: now.toISOString(),
    recorderProfile,
    podsRecorded: 0,
    nodesReporting: 0,
    eventsSeen: 0,
    syscalls: 0,
    conditions: withConditions(
      status?.conditions,
      [
        {
          type: RECORDING_CONDITIONS.recording,
          status: "True",
          reason: "Started",
          message: `new pods the podSelector matches run under SeccompProfile ${recorderProfile}, which logs every call`,
        },
      ],
      now,
    ),
  };
}

export function stoppingPatch(
  status: ProfileRecordingStatus | undefined,
  why: "StopRequested" | "DurationElapsed",
  now: Date,
): ProfileRecordingStatus {
  return {
    phase: "Stopping",
    stoppedAt: now.toISOString(),
    conditions: withConditions(
      status?.conditions,
      [
        {
          type: RECORDING_CONDITIONS.recording,
          status: "False",
          reason: why,
          message:
            why === "StopRequested"
              ? "spec.stop is true: no new pod is recorded; the nodes' last reports are awaited before the profiles are written"
              : "spec.duration has elapsed: no new pod is recorded; the nodes' last reports are awaited before the profiles are written",
        },
      ],
      now,
    ),
  };
}

/** The condition Recording set False with why (a recording that waits or failed records nothing). */
function notRecording(
  status: ProfileRecordingStatus | undefined,
  reason: string,
  message: string,
  now: Date,
): ProfileRecordingStatus["conditions"] {
  return withConditions(
    status?.conditions,
    [{ type: RECORDING_CONDITIONS.recording, status: "False", reason, message }],
    now,
  );
}

/** Still Pending, with why in the condition Recording. */
export function pendingPatch(
  status: ProfileRecordingStatus | undefined,
  reason: string,
  message: string,
  now: Date,
): ProfileRecordingStatus {
  return { phase: "Pending", conditions: notRecording(status, reason, message, now) };
}

/** Whether `patch` would leave phase and conditions as they are (nothing to write but timestamps). */
export function sameConditions(
  status: ProfileRecordingStatus | undefined,
  patch: ProfileRecordingStatus,
): boolean {
  const strip = (cs: ProfileRecordingStatus["conditions"]) =>
    (cs ?? []).map(({ lastTransitionTime: _, ...c }) => c);
  return (
    status?.phase === patch.phase &&
    JSON.stringify(strip(status?.conditions)) === JSON.stringify(strip(patch.conditions))
  );
}

export function failedPatch(
  status: ProfileRecordingStatus | undefined,
  reason: string,
  message: string,
  now: Date,
): ProfileRecordingStatus {
  return {
    phase: "Failed",
    completedAt: now.toISOString(),
    conditions: notRecording(status, reason, message, now),
  };
}

/** A result profile that could not be written, and why. */
export interface ProfileRefusal {
  profile: string;
  message: string;
}

/**
 * The end: Completed with the profiles written, or Failed when one could not be written (the others
 * are kept and listed). Nothing recorded is Completed without profiles, said in ProfilesWritten.
 */
export function completedPatch(
  status: ProfileRecordingStatus | undefined,
  nodes: readonly RecordingNodeEntry[],
  written: readonly string[],
  refused: readonly ProfileRefusal[],
  now: Date,
): ProfileRecordingStatus {
  const summary = summarizeRecording(nodes);
  const profilesWritten: ConditionChange =
    refused.length > 0
      ? {
          type: RECORDING_CONDITIONS.profilesWritten,
          status: "False",
          reason: "ProfileExists",
          message: refused.map((r) => `${r.profile}: ${r.message}`).join("; "),
        }
      : written.length === 0
        ? {
            type: RECORDING_CONDITIONS.profilesWritten,
            status: "False",
            reason: "NothingRecorded",
            message:
              "no node reported a call of a recorded pod: were pods created (or restarted) while it recorded, and do they match spec.podSelector?",
          }
        : {
            type: RECORDING_CONDITIONS.profilesWritten,
            status: "True",
            reason: "Written",
            message: `wrote SeccompProfile ${written.join(", ")}`,
          };
  return {
    phase: refused.length > 0 ? "Failed" : "Completed",
    completedAt: now.toISOString(),
    profiles: [...written],
    ...summaryOf(summary),
    conditions: withConditions(status?.conditions, [profilesWritten, ...truncation(summary)], now),
  };
}

/** restartPods done: how many were deleted, and which were left alone. */
export function restartedPatch(
  status: ProfileRecordingStatus | undefined,
  restarted: readonly string[],
  unowned: readonly string[],
  now: Date,
): ProfileRecordingStatus {
  const left =
    unowned.length === 0
      ? ""
      : `; left alone, as nothing would recreate them: ${unowned.slice(0, 10).join(", ")}${unowned.length > 10 ? ` and ${unowned.length - 10} more` : ""}`;
  return {
    podsRestarted: restarted.length,
    conditions: withConditions(
      status?.conditions,
      [
        {
          type: RECORDING_CONDITIONS.podsRestarted,
          status: "True",
          reason: "Restarted",
          message: `deleted ${restarted.length} pods that started before the recording, for their owners to recreate under it${left}`,
        },
      ],
      now,
    ),
  };
}
