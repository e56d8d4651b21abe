import { describe, expect, it } from "vitest";
import type { ProfileStatus } from "../api/common.ts";
import { FIRST_STATUS_HOLD_MS } from "./status.ts";
import { FirstStatusHold } from "./status-hold.ts";

const status = (phase: ProfileStatus["phase"], observedGeneration: number): ProfileStatus => ({
  phase,
  observedGeneration,
});

describe("FirstStatusHold", () => {
  it("holds a generation's first Installing status for the window counted from when it was first seen", () => {
    const hold = new FirstStatusHold();
    const next = status("Installing", 2);
    expect(hold.holdMs("seccomp/a", status("Installed", 1), next, 1000)).toBe(FIRST_STATUS_HOLD_MS);
    expect(hold.holdMs("seccomp/a", status("Installed", 1), next, 1100)).toBe(FIRST_STATUS_HOLD_MS - 100);
    expect(hold.holdMs("seccomp/a", status("Installed", 1), next, 1000 + FIRST_STATUS_HOLD_MS)).toBe(0);
    // Another profile has a window of its own.
    expect(hold.holdMs("seccomp/b", undefined, status("Installing", 1), 1100)).toBe(FIRST_STATUS_HOLD_MS);
  });

  it("starts a new window for a new generation, and after being told the profile is gone", () => {
    const hold = new FirstStatusHold();
    hold.holdMs("k", undefined, status("Installing", 1), 0);
    expect(hold.holdMs("k", undefined, status("Installing", 2), 200)).toBe(FIRST_STATUS_HOLD_MS);
    hold.forget("k");
    expect(hold.holdMs("k", undefined, status("Installing", 2), 300)).toBe(FIRST_STATUS_HOLD_MS);
  });

  it("holds nothing once the generation has a status, nor any phase but Installing", () => {
    const hold = new FirstStatusHold();
    expect(hold.holdMs("k", status("Installing", 3), status("Installing", 3), 0)).toBe(0);
    expect(hold.holdMs("k", undefined, status("Pending", 3), 0)).toBe(0);
    expect(hold.holdMs("k", undefined, status("Invalid", 3), 0)).toBe(0);
  });
});
