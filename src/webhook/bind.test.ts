import { describe, expect, it } from "vitest";
import { applyPatch } from "../../test/unit/json-patch.ts";
import { compileBinding } from "../api/binding-match.ts";
import type { ProfileKind } from "../api/constants.ts";
import { profileLabelKey } from "../api/labels.ts";
import { type AdmittedPod, podProfileSettings } from "../api/pod-profiles.ts";
import { BOUND_BY_ANNOTATION, type ProfileBindingSpec } from "../api/profile-binding.ts";
import { type BindingScope, reviewBoundEphemeralContainers, reviewBoundPodCreate } from "./bind.ts";
import type { ProfileView, ReviewContext } from "./review.ts";

const views =
  (entries: Record<string, Partial<ProfileView>>): ReviewContext["profile"] =>
  (kind: ProfileKind, name: string) => {
    const entry = entries[`${kind}/${name}`];
    return (
      entry && {
        terminating: false,
        installedNodes: 1,
        placement: { kind, name, revision: "10", version: "abc", disabled: false },
        ...entry,
      }
    );
  };
const ctx: ReviewContext = {
  profile: views({ "seccomp/baseline": {}, "seccomp/web": {}, "apparmor/web": {} }),
};
const scope = (bindings: Record<string, ProfileBindingSpec>, mode: BindingScope["mode"] = "enabled") => ({
  bindings: Object.entries(bindings).map(([name, spec]) => compileBinding(name, spec)),
  mode,
});
/** A pod as a Deployment writes it: no securityContext at all. */
const plain: AdmittedPod = {
  metadata: { generateName: "web-", labels: { app: "web" } },
  spec: {
    containers: [
      { name: "web", image: "nginx:1.27" },
      { name: "log", image: "busybox" },
    ],
  },
};

describe("reviewBoundPodCreate", () => {
  it("writes the bound profiles, the annotation, the in-use labels and the affinity in one patch", () => {
    const { review, outcomes } = reviewBoundPodCreate(
      plain,
      ctx,
      scope({
        default: { seccompProfile: "baseline" },
        nginx: { image: "nginx:*", seccompProfile: "web", appArmorProfile: "web" },
      }),
    );
    expect(review.allowed).toBe(true);
    if (!review.allowed) return;
    const bound = applyPatch(plain, review.patch);
    expect(bound.spec.containers).toEqual([
      {
        name: "web",
        image: "nginx:1.27",
        securityContext: {
          seccompProfile: { type: "Localhost", localhostProfile: "lockstep/web.json" },
          appArmorProfile: { type: "Localhost", localhostProfile: "lockstep.web" },
        },
      },
      {
        name: "log",
        image: "busybox",
        securityContext: {
          seccompProfile: { type: "Localhost", localhostProfile: "lockstep/baseline.json" },
        },
      },
    ]);
    expect(bound.metadata?.annotations).toEqual({ [BOUND_BY_ANNOTATION]: "default,nginx" });
    const keys = [
      profileLabelKey("seccomp", "web"),
      profileLabelKey("apparmor", "web"),
      profileLabelKey("seccomp", "baseline"),
    ];
    for (const k of keys) expect(bound.metadata?.labels?.[k]).toBe("true");
    expect(bound.metadata?.labels?.app).toBe("web");
    const term =
      bound.spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
    expect(term?.[0]?.matchExpressions?.map((e) => e.key)).toContain("lockstep.dev/seccomp-revision");
    expect(outcomes).toEqual([
      { binding: "nginx", result: "bound" },
      { binding: "default", result: "bound" },
    ]);
    // The bound pod reads, to every later check, as a pod that names its profiles itself.
    expect(podProfileSettings(bound).references).toHaveLength(3);
    // Reinvoked (another webhook changed the pod after): nothing more to bind, nothing to change.
    const again = reviewBoundPodCreate(bound, ctx, scope({ default: { seccompProfile: "baseline" } }));
    expect(again.review).toMatchObject({ allowed: true, patch: [] });
  });

  it("refuses a pod bound to a profile that does not exist or is being deleted, naming the binding, and tells the binding", () => {
    const missing = reviewBoundPodCreate(plain, ctx, scope({ gone: { seccompProfile: "nope" } }));
    expect(missing.review).toMatchObject({
      allowed: false,
      message: expect.stringMatching(
        /container "web" is bound by ProfileBinding "gone" to SeccompProfile "nope", which does not exist/,
      ),
    });
    expect(missing.outcomes).toEqual([
      expect.objectContaining({ binding: "gone", result: "refused", reason: "ProfileMissing" }),
    ]);
    const deleting = reviewBoundPodCreate(
      plain,
      { profile: views({ "seccomp/baseline": { terminating: true } }) },
      scope({ default: { seccompProfile: "baseline" } }),
    );
    expect(deleting.review).toMatchObject({
      allowed: false,
      message: expect.stringContaining("being deleted"),
    });
    expect(deleting.outcomes[0]).toMatchObject({ reason: "ProfileTerminating" });
  });

  it("refuses a conflict, naming both bindings and their profiles, and tells both", () => {
    const { review, outcomes } = reviewBoundPodCreate(
      plain,
      ctx,
      scope({ a: { seccompProfile: "baseline" }, b: { seccompProfile: "web" } }),
    );
    expect(review).toMatchObject({
      allowed: false,
      message: expect.stringContaining(
        'container "web": ProfileBinding "a" (SeccompProfile "baseline") and ProfileBinding "b" (SeccompProfile "web") match it equally specifically',
      ),
    });
    expect(outcomes.map((o) => [o.binding, o.result === "refused" && o.reason])).toEqual([
      ["a", "Conflict"],
      ["b", "Conflict"],
    ]);
  });

  it("keeps a pod's own profile where the namespace forbids override, with a warning", () => {
    const own: AdmittedPod = {
      ...plain,
      spec: {
        containers: [
          { name: "web", image: "x", securityContext: { seccompProfile: { type: "RuntimeDefault" } } },
        ],
      },
    };
    const { review, outcomes } = reviewBoundPodCreate(
      own,
      ctx,
      scope({ force: { seccompProfile: "baseline", override: true } }, "no-override"),
    );
    expect(review).toMatchObject({
      allowed: true,
      patch: [],
      warnings: [
        expect.stringContaining(
          'ProfileBinding "force" says override, but this namespace forbids overriding',
        ),
      ],
    });
    expect(outcomes).toEqual([]);
    const forced = reviewBoundPodCreate(
      own,
      ctx,
      scope({ force: { seccompProfile: "baseline", override: true } }),
    );
    expect(forced.review.allowed).toBe(true);
    if (forced.review.allowed)
      expect(
        applyPatch(own, forced.review.patch).spec.containers[0]?.securityContext?.seccompProfile,
      ).toEqual({
        type: "Localhost",
        localhostProfile: "lockstep/baseline.json",
      });
  });

  it("refuses a bound pod the guard refuses (its node lacks the profile) and tells the binding why", () => {
    const pinned: AdmittedPod = { ...plain, spec: { ...plain.spec, nodeName: "n1" } };
    const { review, outcomes } = reviewBoundPodCreate(
      pinned,
      { ...ctx, boundNodeLabels: {} },
      scope({ default: { seccompProfile: "baseline" } }),
    );
    expect(review).toMatchObject({
      allowed: false,
      message: expect.stringContaining('spec.nodeName is "n1"'),
    });
    expect(outcomes).toEqual([expect.objectContaining({ binding: "default", reason: "PodRefused" })]);
  });
});

describe("reviewBoundEphemeralContainers", () => {
  const running: AdmittedPod = {
    metadata: { name: "web-1", labels: { app: "web", [profileLabelKey("seccomp", "baseline")]: "true" } },
    spec: {
      nodeName: "n1",
      containers: [
        {
          name: "web",
          image: "nginx:1",
          securityContext: {
            seccompProfile: { type: "Localhost", localhostProfile: "lockstep/baseline.json" },
          },
        },
      ],
    },
  };
  const debugged: AdmittedPod = {
    ...running,
    spec: { ...running.spec, ephemeralContainers: [{ name: "debugger", image: "busybox" }] },
  };
  const revision = { "lockstep.dev/seccomp-revision": "10" };

  it("binds a new debug container like any container, when the pod's node has the profile", () => {
    const { review } = reviewBoundEphemeralContainers(
      debugged,
      running,
      { ...ctx, boundNodeLabels: revision },
      scope({ default: { seccompProfile: "baseline" } }),
    );
    expect(review).toMatchObject({
      allowed: true,
      patch: [
        {
          op: "add",
          path: "/spec/ephemeralContainers/0/securityContext",
          value: { seccompProfile: { type: "Localhost", localhostProfile: "lockstep/baseline.json" } },
        },
      ],
      warnings: [
        expect.stringContaining(
          'ephemeral container "debugger" gets SeccompProfile "baseline" from ProfileBinding "default"',
        ),
      ],
    });
  });

  it("refuses a debug container bound to a profile the pod's node lacks: it would start without it", () => {
    const { review } = reviewBoundEphemeralContainers(
      debugged,
      running,
      { ...ctx, boundNodeLabels: {} },
      scope({ default: { seccompProfile: "baseline" } }),
    );
    expect(review).toMatchObject({ allowed: false, message: expect.stringContaining("a pod cannot move") });
  });
});
