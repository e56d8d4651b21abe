import { describe, expect, it } from "vitest";
import {
  nodeLabelsChangeNeedsSync,
  podLabelsChangeNeedsSync,
  profileChangeNeedsSync,
} from "./sync-causes.ts";

describe("which events can change a sync", () => {
  it("a profile: a spec change always; another write only when it raises the revision delivered", () => {
    expect(profileChangeNeedsSync(true, "100", "90")).toBe(true);
    // The controller's finalizer write before it fixed the revision in status: a newer revision to claim.
    expect(profileChangeNeedsSync(false, "100", "101")).toBe(true);
    // Its status writes: the revision stays where the first one fixed it.
    expect(profileChangeNeedsSync(false, "100", "100")).toBe(false);
    expect(profileChangeNeedsSync(false, "100", "90")).toBe(false);
    expect(profileChangeNeedsSync(false, "100", "not-a-revision")).toBe(false);
  });

  it("the Node: any label but the echo of the agent's own PATCH", () => {
    const own = new Map([
      ["lockstep.dev/seccomp-revision", "12"],
      ["lockstep.dev/agent", "0.1.0"],
    ]);
    const before = { pool: "a", "lockstep.dev/seccomp-revision": "10", "failed.seccomp.lockstep.dev/x": "X" };
    const echo = { pool: "a", "lockstep.dev/seccomp-revision": "12", "lockstep.dev/agent": "0.1.0" };
    expect(nodeLabelsChangeNeedsSync(before, echo, own)).toBe(false);
    expect(nodeLabelsChangeNeedsSync(before, before, own)).toBe(false);
    // Relabelled: a nodeSelector may name the key.
    expect(nodeLabelsChangeNeedsSync(before, { ...echo, pool: "b" }, own)).toBe(true);
    // Someone else changed or removed a Lockstep label: it must be put back.
    expect(nodeLabelsChangeNeedsSync(echo, { ...echo, "lockstep.dev/seccomp-revision": "1" }, own)).toBe(
      true,
    );
    expect(nodeLabelsChangeNeedsSync(echo, { pool: "a", "lockstep.dev/seccomp-revision": "12" }, own)).toBe(
      true,
    );
    // Before the first sync every change counts.
    expect(nodeLabelsChangeNeedsSync(before, echo, undefined)).toBe(true);
  });

  it("a pod: only its in-use labels, not its status", () => {
    const using = { app: "web", "seccomp.lockstep.dev/web": "true" };
    expect(podLabelsChangeNeedsSync(undefined, using)).toBe(true);
    expect(podLabelsChangeNeedsSync(using, undefined)).toBe(true);
    expect(podLabelsChangeNeedsSync(using, { ...using, app: "other" })).toBe(false);
    expect(podLabelsChangeNeedsSync(undefined, { app: "web" })).toBe(false);
    expect(podLabelsChangeNeedsSync(using, { app: "web", "apparmor.lockstep.dev/web": "true" })).toBe(true);
  });
});
