// The webhook's review of a pod created in a namespace where ProfileRecordings run
// (docs/adr/0039-profile-recording.md): the recording that selects it puts it under its recorder profile
// (recording-patch.ts), and the recorded pod goes to the same guard as every pod (review.ts), so the one
// patch carries both and the pod lands only where the recorder profile is installed. A recording never
// keeps a pod from starting: when its recorder profile is not (or no longer) there, the pod is reviewed
// as it came, with a warning. Pure.

import type { AdmittedPod } from "../api/pod-profiles.ts";
import { PROFILE_RECORDING_KIND } from "../api/profile-recording.ts";
import { type ActiveRecording, applyRecording, recordingsSelecting } from "../api/recording-patch.ts";
import { type PodReview, type ReviewContext, reviewPodCreate } from "./review.ts";

const recordingName = (name: string) => `${PROFILE_RECORDING_KIND} ${JSON.stringify(name)}`;

/** Pod CREATE: the recorder profile and the guard, in one patch. */
export function reviewRecordedPodCreate(
  pod: AdmittedPod,
  ctx: ReviewContext,
  recordings: readonly ActiveRecording[],
): PodReview {
  const usable = recordings.filter((r) => {
    const view = ctx.profile("seccomp", r.recorderProfile);
    return view !== undefined && !view.terminating;
  });
  const recorded = applyRecording(pod, recordingsSelecting(pod, usable));
  const warnings = recordingsSelecting(pod, recordings)
    .filter((r) => !usable.includes(r))
    .map(
      (r) =>
        `${recordingName(r.name)} selects this pod, but its recorder profile is not ready: the pod is not recorded`,
    );
  if (recorded === undefined) {
    const review = reviewPodCreate(pod, ctx);
    return review.allowed ? { ...review, warnings: [...warnings, ...review.warnings] } : review;
  }
  const review = reviewPodCreate(recorded.pod, ctx);
  if (!review.allowed) return review;
  if (recorded.alsoSelectedBy.length > 0)
    warnings.push(
      `${recordingName(recorded.recording)} records this pod; ${recorded.alsoSelectedBy.map(recordingName).join(", ")} select it too and do not`,
    );
  return {
    ...review,
    patch: [...recorded.operations, ...review.patch],
    warnings: [`recorded by ${recordingName(recorded.recording)}`, ...warnings, ...review.warnings],
  };
}
