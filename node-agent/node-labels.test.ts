import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FAILED_LABEL_PREFIX, PROFILE_KINDS, type ProfileKind } from "../src/api/constants.ts";
import { failedLabelKey } from "../src/api/labels.ts";
import { MAX_FAILURE_LABELS_PER_KIND } from "../src/api/limits.ts";
import { maxRevision, nodeHasProfile } from "../src/api/node-profiles.ts";
import { LABEL_NAME_MAX } from "../src/api/patterns.ts";
import {
  boundFailureLabels,
  desiredLockstepLabels,
  type FailureLabel,
  lockstepLabelPatch,
  observedNodeLabels,
} from "./node-labels.ts";
import { NO_LONGER_HERE } from "./planner.ts";

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

  it("remove the agent's keys the state does not set in the same patch, and leave every other label alone", () => {
    const older = {
      "kubernetes.io/hostname": "n1",
      pool: "web",
      "seccomp.lockstep.dev/web": "0123456789ab",
      "apparmor.lockstep.dev/web-aa": "ba9876543210",
      "failed.seccomp.lockstep.dev/gone": "LoadFailed",
      "selector.lockstep.dev/zone": "a",
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
          "failed.seccomp.lockstep.dev/gone": null,
          "selector.lockstep.dev/zone": null,
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

describe("boundFailureLabels: a cap on failure labels that never lets a node claim what it lacks", () => {
  const failure = (
    kind: ProfileKind,
    name: string,
    revision: string,
    reason = "BaseNotFound",
  ): FailureLabel => ({
    kind,
    name,
    key: failedLabelKey(kind, name),
    reason,
    revision,
  });

  it("labels everything under the cap and changes no revision", () => {
    const failures = [failure("seccomp", "a", "5"), failure("apparmor", "b", "9")];
    expect(boundFailureLabels(failures, { seccomp: "20", apparmor: "30" }, 2)).toEqual({
      failed: new Map([
        [failedLabelKey("seccomp", "a"), "BaseNotFound"],
        [failedLabelKey("apparmor", "b"), "BaseNotFound"],
      ]),
      revisions: { seccomp: "20", apparmor: "30" },
      unlabelled: [],
    });
  });

  it("past the cap labels the oldest failures and holds the revision below the oldest one left", () => {
    const failures = ["40", "12", "31", "25"].map((r) => failure("seccomp", `p${r}`, r));
    const bounded = boundFailureLabels(failures, { seccomp: "50", apparmor: "7" }, 2);
    expect([...bounded.failed.keys()]).toEqual([
      failedLabelKey("seccomp", "p12"),
      failedLabelKey("seccomp", "p25"),
    ]);
    expect(bounded.revisions).toEqual({ seccomp: "30", apparmor: "7" });
    expect(bounded.unlabelled.map((f) => f.revision)).toEqual(["31", "40"]);
  });

  it("leaves out marks of profiles still on the node first: a pod that lands there finds them", () => {
    const kept = { ...failure("seccomp", "kept", "3", NO_LONGER_HERE), stillHere: true };
    const bounded = boundFailureLabels(
      [kept, failure("seccomp", "a", "12")],
      { seccomp: "50", apparmor: "7" },
      1,
    );
    expect([...bounded.failed.keys()]).toEqual([failedLabelKey("seccomp", "a")]);
    expect(bounded.revisions.seccomp).toBe("50");
    expect(bounded.unlabelled).toEqual([]);
  });

  it("labels NoLongerHere marks first, and withdraws the revision when one is left out", () => {
    const moved = failure("seccomp", "moved", "45", NO_LONGER_HERE);
    const bounded = boundFailureLabels(
      [failure("seccomp", "a", "12"), moved],
      { seccomp: "50", apparmor: "7" },
      1,
    );
    expect([...bounded.failed]).toEqual([[moved.key, NO_LONGER_HERE]]);
    expect(bounded.revisions.seccomp).toBe("11");
    const twoMoved = [moved, failure("seccomp", "also-moved", "3", NO_LONGER_HERE)];
    expect(boundFailureLabels(twoMoved, { seccomp: "50", apparmor: "7" }, 1).revisions).toEqual({
      seccomp: undefined,
      apparmor: "7",
    });
  });

  it("the production cap keeps a Node's failure labels within their share of etcd's request limit", () => {
    const ETCD_MAX_REQUEST_BYTES = 1.5 * 1024 * 1024;
    const longestKey = Math.max(...Object.values(FAILED_LABEL_PREFIX).map((p) => p.length)) + LABEL_NAME_MAX;
    const labelJson = longestKey + LABEL_NAME_MAX + '"":"",'.length;
    const managedFieldsEntry = longestKey + '"f:":{},'.length;
    const perNode = PROFILE_KINDS.length * MAX_FAILURE_LABELS_PER_KIND * (labelJson + managedFieldsEntry);
    expect(perNode).toBe(66_816);
    expect(perNode).toBeLessThan(ETCD_MAX_REQUEST_BYTES / 20);
  });

  // For any profiles (installed, failed, moved away), floor and cap: a profile the node lacks is never
  // held by the labels (nodeHasProfile), at most `cap` labels per kind, and what is installed below the
  // oldest unlabelled failure stays held.
  it("property: nodeHasProfile only for what is installed; at most cap labels per kind", () => {
    const revision = fc.constantFrom("3", "8", "12", "20", "31");
    const profile = fc.record({
      kind: fc.constantFrom<ProfileKind>("seccomp", "apparmor"),
      name: fc.constantFrom("a", "b", "c", "d", "e", "f", "g"),
      revision,
      state: fc.constantFrom("installed", "BaseNotFound", "WriteFailed", NO_LONGER_HERE, "kept"),
    });
    fc.assert(
      fc.property(
        fc.uniqueArray(profile, { selector: (p) => `${p.kind}/${p.name}`, maxLength: 10 }),
        fc.record({ seccomp: revision, apparmor: revision }),
        fc.nat({ max: 5 }),
        (profiles, floor, cap) => {
          const synced = {
            seccomp: maxRevision([
              floor.seccomp,
              ...profiles.filter((p) => p.kind === "seccomp").map((p) => p.revision),
            ]),
            apparmor: maxRevision([
              floor.apparmor,
              ...profiles.filter((p) => p.kind === "apparmor").map((p) => p.revision),
            ]),
          };
          // "kept": moved away, still on the node (a pod uses it, or no room to mark it): either way is true.
          const failures = profiles
            .filter((p) => p.state !== "installed")
            .map((p) =>
              p.state === "kept"
                ? { ...failure(p.kind, p.name, p.revision, NO_LONGER_HERE), stillHere: true }
                : failure(p.kind, p.name, p.revision, p.state),
            );
          const bounded = boundFailureLabels(failures, synced, cap);
          const labels = desiredLockstepLabels({
            revisions: bounded.revisions,
            failed: bounded.failed,
            selectorSynced: new Map(),
            appArmor: "enabled",
            agentVersion: "1",
          });
          const placement = (p: (typeof profiles)[number], at: string) => ({
            kind: p.kind,
            name: p.name,
            revision: at,
            version: undefined,
            disabled: false,
          });
          for (const kind of PROFILE_KINDS)
            expect(
              [...bounded.failed.keys()].filter((k) => k.startsWith(FAILED_LABEL_PREFIX[kind])).length,
            ).toBeLessThanOrEqual(cap);
          for (const p of profiles) {
            if (p.state === NO_LONGER_HERE) {
              // A pod admitted before it moved away requires some older revision: none may match.
              for (const at of ["3", "8", "12", "20", "31"])
                expect(nodeHasProfile(placement(p, at), labels)).toBe(false);
            } else if (p.state !== "installed" && p.state !== "kept")
              expect(nodeHasProfile(placement(p, p.revision), labels)).toBe(false);
          }
          const oldestLeft = (kind: ProfileKind) => bounded.unlabelled.find((f) => f.kind === kind);
          for (const p of profiles)
            if (p.state === "installed" && oldestLeft(p.kind) === undefined)
              expect(nodeHasProfile(placement(p, p.revision), labels)).toBe(true);
        },
      ),
      { numRuns: 3000 },
    );
  });
});

describe("observedNodeLabels: the planner's view of this Node", () => {
  it("takes the agent's own view of AppArmor over the cached label, and keeps every other label", () => {
    const cached = { pool: "web", "lockstep.dev/apparmor": "enabled" };
    expect(observedNodeLabels(cached, false)).toEqual({
      pool: "web",
      "lockstep.dev/apparmor": "unavailable",
    });
    expect(observedNodeLabels(undefined, true)).toEqual({ "lockstep.dev/apparmor": "enabled" });
    expect(cached["lockstep.dev/apparmor"]).toBe("enabled");
  });
});
