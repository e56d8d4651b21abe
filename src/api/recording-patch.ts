// What an active ProfileRecording writes into a new pod it selects (docs/adr/0039-profile-recording.md):
// every container (init containers too) runs under the recorder profile, whatever profile it had (the
// recording is the point), and the pod names its recording in RECORDING_ANNOTATION. The guard
// (src/webhook/review.ts) then checks the recorded pod like any pod that names a profile, so it lands only
// on nodes that hold the recorder profile. Pure.
import { type JsonPatchOperation, jsonPointerToken } from "./affinity.ts";
import { type BindingAssignment, containerSites, MatchBudget, selectorMatches } from "./binding-match.ts";
import { applyBindings } from "./binding-patch.ts";
import { RECORDING_ANNOTATION } from "./constants.ts";
import type { AdmittedPod } from "./pod-profiles.ts";
import type { PodSelector } from "./profile-binding.ts";

/** An active recording of the pod's namespace, as the webhook's cache holds it. */
export interface ActiveRecording {
  name: string;
  podSelector: PodSelector;
  recorderProfile: string;
}

export interface RecordedPod {
  operations: JsonPatchOperation[];
  pod: AdmittedPod;
  /** The recording the pod now belongs to. */
  recording: string;
  /** Other active recordings that select it too (the first by name wins). */
  alsoSelectedBy: string[];
}

/** The recordings (sorted by name) whose podSelector matches the pod's labels. */
export function recordingsSelecting(
  pod: AdmittedPod,
  recordings: readonly ActiveRecording[],
): ActiveRecording[] {
  const labels = pod.metadata?.labels ?? {};
  return recordings
    .filter((r) => selectorMatches(r.podSelector, labels, new MatchBudget()))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * The pod under `recording`'s recorder profile: every container and init container (ephemeral ones are
 * kubectl debug's, not the workload's) gets it at container level, which wins over the pod level.
 */
export function applyRecording(
  pod: AdmittedPod,
  selecting: readonly ActiveRecording[],
): RecordedPod | undefined {
  const [recording, ...others] = selecting;
  if (recording === undefined) return undefined;
  const assignments: BindingAssignment[] = containerSites(pod)
    .filter((site) => site.group !== "ephemeralContainers")
    .map((site) => ({
      site,
      kind: "seccomp",
      profile: recording.recorderProfile,
      bindings: [],
      replacesOwn: false,
    }));
  const bound = applyBindings(pod, assignments, false);
  const annotations = pod.metadata?.annotations;
  const operation: JsonPatchOperation =
    annotations === undefined
      ? { op: "add", path: "/metadata/annotations", value: { [RECORDING_ANNOTATION]: recording.name } }
      : {
          op: "add",
          path: `/metadata/annotations/${jsonPointerToken(RECORDING_ANNOTATION)}`,
          value: recording.name,
        };
  return {
    operations: [...bound.operations, operation],
    pod: {
      ...bound.pod,
      metadata: {
        ...bound.pod.metadata,
        annotations: { ...(bound.pod.metadata?.annotations ?? {}), [RECORDING_ANNOTATION]: recording.name },
      },
    },
    recording: recording.name,
    alsoSelectedBy: others.map((r) => r.name),
  };
}
