// make demo records with examples/profile-recording.yaml made runnable here (test/demo/demo-recording.ts):
// the example as users read it, in the demo's namespace, for the demo's workload, stopped by the demo.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ProfileRecordingSchema } from "../../src/api/profile-recording.ts";
import { RECORDING_NAMESPACE, recordingHere } from "../demo/demo-recording.ts";

const example = join(import.meta.dirname, "../../examples/profile-recording.yaml");

describe("the demo's recording", () => {
  it("is the example in the demo's namespace, for the ticker pods, without a duration or restart", () => {
    const recording = recordingHere(example, RECORDING_NAMESPACE);
    expect(ProfileRecordingSchema.parse(recording)).toEqual(recording);
    expect(recording.metadata).toEqual({ name: "ticker", namespace: RECORDING_NAMESPACE });
    expect(recording.spec).toEqual({
      podSelector: { matchLabels: { app: "ticker" } },
      mergeStrategy: "container",
    });
  });
});
