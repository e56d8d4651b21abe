import { describe, expect, it } from "vitest";
import { desiredLockstepLabels, lockstepLabelPatch } from "./node-labels.ts";

describe("the Node's Lockstep labels", () => {
  const state = {
    revisions: { seccomp: "120", apparmor: "95" },
    failed: new Map([["failed.seccomp.lockstep.dev/taken", "NameTaken"]]),
    selectorSynced: new Map([["selector.lockstep.dev/pool", "web"]]),
    appArmor: "enabled" as const,
    agentVersion: "0.2.0",
  };

  it("are a revision per kind, the failures, the selector values, readiness and AppArmor: no label per installed profile", () => {
    expect(desiredLockstepLabels(state)).toEqual({
      "lockstep.dev/seccomp-revision": "120",
      "lockstep.dev/apparmor-revision": "95",
      "failed.seccomp.lockstep.dev/taken": "NameTaken",
      "selector.lockstep.dev/pool": "web",
      "lockstep.dev/apparmor": "enabled",
      "lockstep.dev/agent": "0.2.0",
    });
  });

  it("replace an older agent's per-profile labels in one patch, and leave every other label alone", () => {
    const older = {
      "kubernetes.io/hostname": "n1",
      pool: "web",
      "seccomp.lockstep.dev/web": "0123456789ab",
      "apparmor.lockstep.dev/web-aa": "ba9876543210",
      "lockstep.dev/agent": "0.1.0",
      "lockstep.dev/apparmor": "enabled",
    };
    expect(lockstepLabelPatch(older, desiredLockstepLabels(state))).toEqual({
      metadata: {
        labels: {
          "lockstep.dev/seccomp-revision": "120",
          "lockstep.dev/apparmor-revision": "95",
          "failed.seccomp.lockstep.dev/taken": "NameTaken",
          "selector.lockstep.dev/pool": "web",
          "lockstep.dev/agent": "0.2.0",
          "seccomp.lockstep.dev/web": null,
          "apparmor.lockstep.dev/web-aa": null,
        },
      },
    });
  });

  it("drop a failure label once the profile is installed, and send nothing when nothing changed", () => {
    const now = desiredLockstepLabels(state);
    const fixed = desiredLockstepLabels({ ...state, failed: new Map() });
    expect(lockstepLabelPatch(now, fixed)).toEqual({
      metadata: { labels: { "failed.seccomp.lockstep.dev/taken": null } },
    });
    expect(lockstepLabelPatch(fixed, fixed)).toBeUndefined();
  });
});
