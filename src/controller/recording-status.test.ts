import { describe, expect, it } from "vitest";
import type { RecordingNodeEntry } from "../api/profile-recording.ts";
import {
  completedPatch,
  pendingPatch,
  RECORDING_CONDITIONS,
  restartedPatch,
  sameConditions,
  startedPatch,
  stoppingPatch,
  summaryPatch,
  withConditions,
} from "./recording-status.ts";

const t0 = new Date("2026-12-07T10:00:00Z");
const t1 = new Date("2026-12-07T10:01:00Z");
const entry = (node: string, syscalls: string[], truncated = false): RecordingNodeEntry => ({
  node,
  updatedAt: t0.toISOString(),
  containers: [
    { pod: `web-${node}`, podUID: `uid-${node}`, container: "web", syscalls, events: syscalls.length },
  ],
  ...(truncated ? { truncated } : {}),
});

describe("withConditions", () => {
  it("keeps lastTransitionTime while the status stays, moves it when the status changes", () => {
    const first = withConditions(
      undefined,
      [{ type: "Recording", status: "True", reason: "Started", message: "m" }],
      t0,
    );
    const same = withConditions(
      first,
      [{ type: "Recording", status: "True", reason: "Other", message: "n" }],
      t1,
    );
    expect(same).toEqual([
      {
        type: "Recording",
        status: "True",
        reason: "Other",
        message: "n",
        lastTransitionTime: t0.toISOString(),
      },
    ]);
    const changed = withConditions(
      same,
      [{ type: "Recording", status: "False", reason: "StopRequested", message: "x" }],
      t1,
    );
    expect(changed[0]?.lastTransitionTime).toBe(t1.toISOString());
  });
});

describe("the recording's status", () => {
  it("starts with zero counts and the recorder profile named", () => {
    const s = startedPatch(undefined, "rec-shop-web", t0);
    expect(s).toMatchObject({
      phase: "Recording",
      startedAt: t0.toISOString(),
      recorderProfile: "rec-shop-web",
      podsRecorded: 0,
    });
    expect(s.conditions?.[0]).toMatchObject({
      type: RECORDING_CONDITIONS.recording,
      status: "True",
      reason: "Started",
    });
  });

  it("summarises the agents' entries only when that changes something", () => {
    const nodes = [entry("a", ["read", "write"]), entry("b", ["read"])];
    const patch = summaryPatch(undefined, nodes, t0);
    expect(patch).toEqual({ podsRecorded: 2, nodesReporting: 2, eventsSeen: 3, syscalls: 2 });
    expect(summaryPatch(patch, nodes, t0)).toBeUndefined();
  });

  it("says when a node hit a cap", () => {
    const patch = summaryPatch(undefined, [entry("a", ["read"], true)], t0);
    expect(patch?.conditions?.[0]).toMatchObject({
      type: RECORDING_CONDITIONS.truncated,
      status: "True",
      reason: "NodeCapReached",
    });
    expect(patch?.conditions?.[0]?.message).toContain("nodes a reached a cap");
  });

  it("says why it stopped", () => {
    expect(stoppingPatch(undefined, "DurationElapsed", t1)).toMatchObject({
      phase: "Stopping",
      stoppedAt: t1.toISOString(),
      conditions: [{ type: "Recording", status: "False", reason: "DurationElapsed" }],
    });
  });

  it("completes with the profiles written, fails naming a profile it could not write, says when nothing was recorded", () => {
    const nodes = [entry("a", ["read"])];
    expect(completedPatch(undefined, nodes, ["web-web"], [], t1)).toMatchObject({
      phase: "Completed",
      profiles: ["web-web"],
      syscalls: 1,
      conditions: [{ type: "ProfilesWritten", status: "True", reason: "Written" }],
    });
    const failed = completedPatch(undefined, nodes, [], [{ profile: "web-web", message: "exists" }], t1);
    expect(failed).toMatchObject({
      phase: "Failed",
      conditions: [{ reason: "ProfileExists", message: "web-web: exists" }],
    });
    expect(completedPatch(undefined, [], [], [], t1)).toMatchObject({
      phase: "Completed",
      profiles: [],
      conditions: [{ status: "False", reason: "NothingRecorded" }],
    });
  });

  it("counts restarted pods and names those left alone", () => {
    const patch = restartedPatch(undefined, ["a", "b"], ["bare"], t0);
    expect(patch.podsRestarted).toBe(2);
    expect(patch.conditions?.[0]?.message).toContain("left alone, as nothing would recreate them: bare");
  });
});

describe("pendingPatch", () => {
  it("says why it waits, and is the same the second time", () => {
    const first = pendingPatch(undefined, "RecorderTerminating", "waiting", t0);
    expect(first).toMatchObject({
      phase: "Pending",
      conditions: [{ type: "Recording", status: "False", reason: "RecorderTerminating" }],
    });
    expect(sameConditions(undefined, first)).toBe(false);
    expect(sameConditions(first, pendingPatch(first, "RecorderTerminating", "waiting", t1))).toBe(true);
  });
});
