import { describe, expect, it } from "vitest";
import type { ProfileKind } from "../api/constants.ts";
import { profileLabelKey } from "../api/labels.ts";
import { profileRequirements } from "../api/node-profiles.ts";
import type { AdmittedPod, NodeSelectorTerm } from "../api/pod-profiles.ts";
import {
  MAX_LISTED_PROBLEMS,
  type ProfileView,
  reviewEphemeralContainers,
  reviewPodCreate,
} from "./review.ts";

const pod = (extra: Partial<AdmittedPod["spec"]> = {}): AdmittedPod => ({
  metadata: { name: "p" },
  spec: {
    containers: [
      {
        name: "web",
        securityContext: { seccompProfile: { type: "Localhost", localhostProfile: "lockstep/web.json" } },
      },
    ],
    ...extra,
  },
});
/** Views of profiles at revision 10. */
const views =
  (entries: Record<string, Omit<ProfileView, "placement">>) =>
  (kind: ProfileKind, name: string): ProfileView | undefined => {
    const entry = entries[`${kind}/${name}`];
    return entry && { ...entry, placement: { kind, name, revision: "10", disabled: false } };
  };

const webKey = profileLabelKey("seccomp", "web");
const strictKey = profileLabelKey("seccomp", "strict");

describe("reviewPod", () => {
  it("leaves pods without Lockstep profiles alone (RuntimeDefault, other localhost paths)", () => {
    const other: AdmittedPod = {
      spec: {
        securityContext: { seccompProfile: { type: "RuntimeDefault" } },
        containers: [
          {
            name: "c",
            securityContext: { seccompProfile: { type: "Localhost", localhostProfile: "other/x.json" } },
          },
        ],
      },
    };
    expect(reviewPodCreate(other, { profile: () => undefined })).toEqual({
      allowed: true,
      patch: [],
      warnings: [],
      profiles: [],
    });
  });

  it("denies a missing or terminating profile, naming the container and the profile", () => {
    expect(reviewPodCreate(pod(), { profile: () => undefined })).toMatchObject({
      allowed: false,
      message: expect.stringMatching(
        /^container "web" references SeccompProfile "web" .*which does not exist/,
      ),
    });
    expect(
      reviewPodCreate(pod(), { profile: views({ "seccomp/web": { terminating: true, installedNodes: 1 } }) }),
    ).toMatchObject({
      allowed: false,
      message: expect.stringContaining("which is being deleted"),
    });
  });

  it("admits with a warning when the profile is installed on no node yet", () => {
    const review = reviewPodCreate(pod(), {
      profile: views({ "seccomp/web": { terminating: false, installedNodes: 0 } }),
    });
    expect(review).toMatchObject({
      allowed: true,
      warnings: [expect.stringMatching(/not installed on any node yet/)],
    });
  });

  it("denies spec.nodeName on a node without the profile, and admits it on one that has it", () => {
    const profile = views({ "seccomp/web": { terminating: false, installedNodes: 1 } });
    expect(reviewPodCreate(pod({ nodeName: "n1" }), { profile, boundNodeLabels: {} })).toMatchObject({
      allowed: false,
      message: expect.stringMatching(
        /spec.nodeName is "n1", which does not have SeccompProfile "web" installed/,
      ),
    });
    // A per-profile label (the agents before ADR 0024, never released) is no installation.
    expect(
      reviewPodCreate(pod({ nodeName: "n1" }), {
        profile,
        boundNodeLabels: { "seccomp.lockstep.dev/web": "abc" },
      }),
    ).toMatchObject({ allowed: false });
    // Its agent caught up, and no failure label for web.
    const caughtUp = { "lockstep.dev/seccomp-revision": "10" };
    expect(reviewPodCreate(pod({ nodeName: "n1" }), { profile, boundNodeLabels: caughtUp })).toMatchObject({
      allowed: true,
    });
    for (const behind of [
      { "lockstep.dev/seccomp-revision": "9" },
      { ...caughtUp, "failed.seccomp.lockstep.dev/web": "NameTaken" },
    ])
      expect(reviewPodCreate(pod({ nodeName: "n1" }), { profile, boundNodeLabels: behind })).toMatchObject({
        allowed: false,
      });
  });

  it("refuses a path the API server refuses and a file in Lockstep's directory that no profile has, naming the field", () => {
    const withPath = (localhostProfile: string) =>
      pod({
        containers: [
          { name: "web", securityContext: { seccompProfile: { type: "Localhost", localhostProfile } } },
        ],
      });
    const profile = views({ "seccomp/web": { terminating: false, installedNodes: 1 } });
    expect(reviewPodCreate(withPath("foo/../lockstep/web.json"), { profile })).toEqual({
      allowed: false,
      message: expect.stringMatching(
        /^container "web": spec\.containers\[0\]\.securityContext\.seccompProfile\.localhostProfile: "foo\/..\/lockstep\/web.json" must not contain '..'/,
      ),
    });
    expect(reviewPodCreate(withPath("lockstep/sub/web.json"), { profile })).toMatchObject({
      allowed: false,
      message: expect.stringContaining(
        `"lockstep/sub/web.json" is the file "lockstep/sub/web.json" in Lockstep's directory`,
      ),
    });
    for (const spelling of [
      "./lockstep/web.json",
      "lockstep//web.json",
      "lockstep/./web.json",
      "lockstep/web.json/",
    ])
      expect(reviewPodCreate(withPath(spelling), { profile }), spelling).toMatchObject({
        allowed: true,
        profiles: ["seccomp.lockstep.dev/web"],
      });
  });

  it("on kubectl debug, refuses a missing profile by name and a profile the pod's node lacks, naming the node", () => {
    const running = pod({ nodeName: "n1" });
    const debug = (localhostProfile: string): AdmittedPod => ({
      ...running,
      spec: {
        ...running.spec,
        ephemeralContainers: [
          { name: "debugger", securityContext: { seccompProfile: { type: "Localhost", localhostProfile } } },
        ],
      },
    });
    const profile = views({
      "seccomp/web": { terminating: false, installedNodes: 1 },
      "seccomp/strict": { terminating: false, installedNodes: 1 },
    });
    // web is installed on the pod's node; strict failed there.
    const boundNodeLabels = {
      "lockstep.dev/seccomp-revision": "10",
      "failed.seccomp.lockstep.dev/strict": "LoadFailed",
    };
    const ctx = { profile, boundNodeLabels };
    expect(reviewEphemeralContainers(debug("lockstep/gone.json"), running, ctx)).toEqual({
      allowed: false,
      message: expect.stringMatching(
        /^container "debugger" references SeccompProfile "gone" .*which does not exist/,
      ),
    });
    expect(reviewEphemeralContainers(debug("lockstep/strict.json"), running, ctx)).toEqual({
      allowed: false,
      message: expect.stringMatching(
        /runs on node "n1" \(spec\.nodeName\), which does not have SeccompProfile "strict" installed, and a pod cannot move/,
      ),
    });
    expect(reviewEphemeralContainers(debug("lockstep/web.json"), running, ctx)).toMatchObject({
      allowed: true,
      patch: [],
    });
    // A container that was already there is not reviewed again.
    expect(
      reviewEphemeralContainers(debug("lockstep/gone.json"), debug("lockstep/gone.json"), ctx),
    ).toMatchObject({
      allowed: true,
    });
  });

  describe("on kubectl debug of a pod not yet scheduled, judges the pod's node affinity, not its labels", () => {
    const profile = views({
      "seccomp/web": { terminating: false, installedNodes: 1 },
      "seccomp/strict": { terminating: false, installedNodes: 1 },
    });
    /** What the webhook wrote into every term at CREATE for `name` (revision 10). */
    const guard = (name: string, revision = "10") =>
      profileRequirements([{ kind: "seccomp", name, revision, disabled: false }]);
    const pending = (
      terms: NodeSelectorTerm[] | undefined,
      labels: Record<string, string> = {},
    ): AdmittedPod => ({
      metadata: { name: "p", labels },
      spec: {
        ...pod().spec,
        ...(terms && {
          affinity: {
            nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: terms } },
          },
        }),
      },
    });
    const debug = (before: AdmittedPod, localhostProfile: string): AdmittedPod => ({
      ...before,
      spec: {
        ...before.spec,
        ephemeralContainers: [
          { name: "dbg", securityContext: { seccompProfile: { type: "Localhost", localhostProfile } } },
        ],
      },
    });
    const review = (before: AdmittedPod, localhostProfile: string) =>
      reviewEphemeralContainers(debug(before, localhostProfile), before, { profile });
    const refusal =
      /^pod "p" is not scheduled yet \(no spec\.nodeName\) and its node affinity does not require SeccompProfile "strict" in every term/;

    it("admits a profile the affinity written at CREATE requires", () => {
      const created = pending([{ matchExpressions: guard("web") }], { [webKey]: "true" });
      expect(review(created, "lockstep/web.json")).toEqual({
        allowed: true,
        patch: [],
        warnings: [],
        profiles: [webKey],
      });
      expect(review(created, "lockstep/strict.json")).toEqual({
        allowed: false,
        message: expect.stringMatching(refusal),
      });
    });

    it("refuses a profile that only a label written by hand names (a pod created before the webhook saw it)", () => {
      const handLabelled = pending(undefined, { [strictKey]: "true" });
      expect(review(handLabelled, "lockstep/strict.json")).toEqual({
        allowed: false,
        message: expect.stringMatching(refusal),
      });
      const otherAffinity = pending(
        [{ matchExpressions: [{ key: "pool", operator: "In", values: ["web"] }] }],
        {
          [strictKey]: "true",
        },
      );
      expect(review(otherAffinity, "lockstep/strict.json")).toMatchObject({ allowed: false });
    });

    it("refuses when one ORed term lacks the requirement, whatever the others carry", () => {
      const oneTermOpen = pending([
        { matchExpressions: guard("strict") },
        { matchFields: [{ key: "metadata.name", operator: "In", values: ["n1"] }] },
      ]);
      expect(review(oneTermOpen, "lockstep/strict.json")).toMatchObject({ allowed: false });
      // Part of the requirement is not the requirement: without the failure label's DoesNotExist a node
      // that failed to install it qualifies.
      const partial = pending([{ matchExpressions: guard("strict").slice(0, 1) }]);
      expect(review(partial, "lockstep/strict.json")).toMatchObject({ allowed: false });
    });

    it("takes a newer revision as at least as strict and an older one as not enough", () => {
      expect(
        review(pending([{ matchExpressions: guard("strict", "12") }]), "lockstep/strict.json"),
      ).toMatchObject({
        allowed: true,
      });
      expect(
        review(pending([{ matchExpressions: guard("strict", "9") }]), "lockstep/strict.json"),
      ).toMatchObject({
        allowed: false,
      });
      // A `Gt` the scheduler cannot read as one revision is no requirement at all.
      const revisionKey = "lockstep.dev/seccomp-revision";
      for (const values of [["abc"], ["99", "100"], [], ["-5"]]) {
        const odd = guard("strict").map((r) => (r.key === revisionKey ? { ...r, values } : r));
        expect(
          review(pending([{ matchExpressions: odd }]), "lockstep/strict.json"),
          String(values),
        ).toMatchObject({
          allowed: false,
        });
      }
    });

    it("leaves a term that matches no node alone, and takes no per-profile node label for the requirement", () => {
      const withEmpty = pending([{ matchExpressions: guard("strict") }, {}]);
      expect(review(withEmpty, "lockstep/strict.json")).toMatchObject({
        allowed: true,
        warnings: [expect.stringContaining("not among the pod's in-use labels")],
      });
      // The label the agents before ADR 0024 wrote on their Node (never released): no agent writes it.
      const perProfile = { key: strictKey, operator: "In", values: ["abc"] };
      const legacyTerm = pending([{ matchExpressions: guard("strict") }, { matchExpressions: [perProfile] }]);
      expect(review(legacyTerm, "lockstep/strict.json")).toMatchObject({ allowed: false });
    });
  });

  it("removes in-use labels a pod carries for profiles it does not use", () => {
    const labelled: AdmittedPod = {
      ...pod(),
      metadata: { name: "p", labels: { "apparmor.lockstep.dev/other": "true", team: "a" } },
    };
    const review = reviewPodCreate(labelled, {
      profile: views({ "seccomp/web": { terminating: false, installedNodes: 1 } }),
    });
    expect(review).toMatchObject({ allowed: true, profiles: ["seccomp.lockstep.dev/web"] });
    if (!review.allowed) return;
    expect(review.patch.slice(0, 2)).toEqual([
      { op: "remove", path: "/metadata/labels/apparmor.lockstep.dev~1other" },
      { op: "add", path: "/metadata/labels/seccomp.lockstep.dev~1web", value: "true" },
    ]);
  });
});

describe("a refusal of a pod with many problems", () => {
  it("lists the first problems and counts the rest, instead of one line per container", () => {
    const containers = Array.from({ length: 5000 }, (_, i) => ({
      name: `c${i}`,
      securityContext: { appArmorProfile: { type: "Localhost", localhostProfile: "lockstep.missing" } },
    }));
    const review = reviewPodCreate({ spec: { containers } }, { profile: () => undefined });
    if (review.allowed) throw new Error("allowed");
    expect(review.message).toContain('container "c0" references AppArmorProfile "missing"');
    expect(review.message).toContain(`; and ${5000 - MAX_LISTED_PROBLEMS} more`);
    expect(review.message).not.toContain('"c10"');
    expect(review.message.length).toBeLessThan(2000);
  });
});
