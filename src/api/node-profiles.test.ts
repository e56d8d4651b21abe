import { describe, expect, it } from "vitest";
import {
  nodeHasProfile,
  nodeProfileReport,
  nodeProfileState,
  type ProfilePlacement,
  placementOf,
  profileRevision,
  revisionBefore,
} from "./node-profiles.ts";

describe("revisionBefore", () => {
  it("compares revisions as integers, and is false when either is not one", () => {
    expect(revisionBefore("9", "10")).toBe(true); // not as strings
    expect(revisionBefore("10", "10")).toBe(false);
    expect(revisionBefore("11", "10")).toBe(false);
    expect(revisionBefore("999999999999999999", "1000000000000000000")).toBe(false); // 19 digits: not one
    expect(revisionBefore(undefined, "10")).toBe(false);
    expect(revisionBefore("10", "x")).toBe(false);
  });
});

describe("profileRevision", () => {
  it("is the resourceVersion until the controller records the generation's revision, then that, through later writes", () => {
    expect(profileRevision({ metadata: { resourceVersion: "100", generation: 1 } })).toBe("100");
    const recorded = { observedGeneration: 1, revision: "100" };
    expect(profileRevision({ metadata: { resourceVersion: "130", generation: 1 }, status: recorded })).toBe(
      "100",
    );
    // A new generation: the record is about the old one.
    expect(profileRevision({ metadata: { resourceVersion: "150", generation: 2 }, status: recorded })).toBe(
      "150",
    );
    expect(profileRevision({ metadata: { resourceVersion: "not-a-number" } })).toBe("0");
  });
});

describe("nodeHasProfile", () => {
  const web: ProfilePlacement = {
    kind: "seccomp",
    name: "web",
    revision: "100",
    version: "abc",
    nodeSelector: { pool: "web" },
    disabled: false,
  };
  const caughtUp = {
    pool: "web",
    "lockstep.dev/seccomp-revision": "100",
    "selector.lockstep.dev/pool": "web",
  };

  it("holds on a node whose agent caught up, recorded the selector value and did not fail", () => {
    expect(nodeHasProfile(web, caughtUp)).toBe(true);
    expect(nodeProfileState(web, { ...caughtUp, "lockstep.dev/seccomp-revision": "99" })).toBe("pending");
    expect(nodeProfileState(web, { ...caughtUp, "failed.seccomp.lockstep.dev/web": "WriteFailed" })).toBe(
      "failed",
    );
    // Relabelled into the selector after the agent last synced: not yet.
    expect(nodeHasProfile(web, { ...caughtUp, "selector.lockstep.dev/pool": "batch" })).toBe(false);
    expect(nodeHasProfile(web, { ...caughtUp, pool: "batch" })).toBe(false);
    expect(nodeHasProfile({ ...web, disabled: true }, caughtUp)).toBe(false);
    expect(
      nodeHasProfile({ ...web, kind: "apparmor" }, { ...caughtUp, "lockstep.dev/apparmor-revision": "100" }),
    ).toBe(false);
  });

  it("holds on a node an older agent labelled with the current version, and only that version", () => {
    expect(nodeHasProfile(web, { pool: "web", "seccomp.lockstep.dev/web": "abc" })).toBe(true);
    expect(nodeHasProfile(web, { pool: "web", "seccomp.lockstep.dev/web": "old" })).toBe(false);
    expect(
      nodeHasProfile({ ...web, version: undefined }, { pool: "web", "seccomp.lockstep.dev/web": "abc" }),
    ).toBe(false);
  });
});

describe("placementOf", () => {
  it("takes the version from a status about the current generation only", () => {
    const obj = {
      metadata: { name: "web", resourceVersion: "7", generation: 2 },
      spec: { nodeSelector: { pool: "web" }, disabled: true },
      status: { observedGeneration: 1, revision: "5", version: "abc" },
    };
    expect(placementOf("seccomp", obj)).toEqual({
      kind: "seccomp",
      name: "web",
      revision: "7",
      version: undefined,
      nodeSelector: { pool: "web" },
      disabled: true,
    });
    expect(
      placementOf("seccomp", { ...obj, status: { ...obj.status, observedGeneration: 2 } }),
    ).toMatchObject({
      revision: "5",
      version: "abc",
    });
  });
});

describe("nodeProfileReport", () => {
  it("says for each profile whether the node holds it, failed it (with the reason), waits for it, or is not meant to have it", () => {
    const at = (name: string, extra: Partial<ProfilePlacement> = {}): ProfilePlacement => ({
      kind: "seccomp",
      name,
      revision: "50",
      version: "abc",
      disabled: false,
      ...extra,
    });
    const labels = {
      "lockstep.dev/seccomp-revision": "60",
      "failed.seccomp.lockstep.dev/taken": "NameTaken",
      "lockstep.dev/apparmor": "unavailable",
    };
    expect(
      nodeProfileReport(labels, [
        at("web"),
        at("taken"),
        at("newer", { revision: "70" }),
        at("off", { disabled: true }),
        at("aa", { kind: "apparmor" }),
      ]),
    ).toEqual([
      { kind: "seccomp", name: "web", state: "installed" },
      { kind: "seccomp", name: "taken", state: "failed", reason: "NameTaken" },
      { kind: "seccomp", name: "newer", state: "pending" },
      { kind: "seccomp", name: "off", state: "elsewhere" },
      { kind: "apparmor", name: "aa", state: "elsewhere" },
    ]);
  });
});
