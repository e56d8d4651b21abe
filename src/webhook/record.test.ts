import { describe, expect, it } from "vitest";
import { applyPatch } from "../../test/unit/json-patch.ts";
import { RECORDING_ANNOTATION } from "../api/constants.ts";
import { profileLabelKey } from "../api/labels.ts";
import { type AdmittedPod, podProfileSettings } from "../api/pod-profiles.ts";
import type { ActiveRecording } from "../api/recording-patch.ts";
import { reviewRecordedPodCreate } from "./record.ts";
import type { ProfileView, ReviewContext } from "./review.ts";

const view = (name: string, o: Partial<ProfileView> = {}): ProfileView => ({
  terminating: false,
  installedNodes: 1,
  placement: { kind: "seccomp", name, revision: "10", disabled: false },
  ...o,
});
const ctxWith = (profiles: Record<string, Partial<ProfileView>>): ReviewContext => ({
  profile: (kind, name) => (kind === "seccomp" && profiles[name] ? view(name, profiles[name]) : undefined),
});
const ctx = ctxWith({ "rec-shop-web": {}, "rec-shop-all": {}, own: {} });

const web: ActiveRecording = {
  name: "web",
  podSelector: { matchLabels: { app: "web" } },
  recorderProfile: "rec-shop-web",
};
const all: ActiveRecording = { name: "all", podSelector: {}, recorderProfile: "rec-shop-all" };

const pod: AdmittedPod = {
  metadata: { generateName: "web-", labels: { app: "web" } },
  spec: {
    initContainers: [{ name: "init", image: "busybox" }],
    containers: [
      {
        name: "web",
        image: "nginx",
        securityContext: { seccompProfile: { type: "Localhost", localhostProfile: "lockstep/own.json" } },
      },
      { name: "log", image: "busybox" },
    ],
  },
};

describe("reviewRecordedPodCreate", () => {
  it("puts every container under the recorder profile, annotates the pod, and guards it like any pod", () => {
    const review = reviewRecordedPodCreate(pod, ctx, [web]);
    expect(review.allowed).toBe(true);
    if (!review.allowed) return;
    const recorded = applyPatch(pod, review.patch);
    const recorder = { type: "Localhost", localhostProfile: "lockstep/rec-shop-web.json" };
    for (const c of [...(recorded.spec.initContainers ?? []), ...recorded.spec.containers])
      expect(c.securityContext?.seccompProfile).toEqual(recorder);
    expect(recorded.metadata?.annotations).toEqual({ [RECORDING_ANNOTATION]: "web" });
    // Exactly the recorder profile is in use (the container's own is replaced), and required of the node.
    expect(Object.keys(recorded.metadata?.labels ?? {}).filter((k) => k.startsWith("seccomp."))).toEqual([
      profileLabelKey("seccomp", "rec-shop-web"),
    ]);
    expect(new Set(podProfileSettings(recorded).references.map((r) => r.name))).toEqual(
      new Set(["rec-shop-web"]),
    );
    const terms =
      recorded.spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
    expect(JSON.stringify(terms)).toContain("lockstep.dev/seccomp-revision");
    expect(review.warnings).toContain('recorded by ProfileRecording "web"');
  });

  it("leaves a pod no recording selects as it came", () => {
    const other: AdmittedPod = { ...pod, metadata: { labels: { app: "db" } } };
    const review = reviewRecordedPodCreate(other, ctx, [web]);
    expect(review.allowed && applyPatch(other, review.patch).metadata?.annotations).toBeUndefined();
  });

  it("records under the first recording by name when two select the pod, and says so", () => {
    const review = reviewRecordedPodCreate(pod, ctx, [web, all]);
    if (!review.allowed) throw new Error(review.message);
    expect(applyPatch(pod, review.patch).metadata?.annotations?.[RECORDING_ANNOTATION]).toBe("all");
    expect(review.warnings.join("\n")).toContain('ProfileRecording "web" select it too');
  });

  it("never keeps a pod from starting: without its recorder profile the pod is not recorded", () => {
    for (const context of [
      ctxWith({ own: {} }),
      ctxWith({ own: {}, "rec-shop-web": { terminating: true } }),
    ]) {
      const review = reviewRecordedPodCreate(pod, context, [web]);
      if (!review.allowed) throw new Error(review.message);
      const admitted = applyPatch(pod, review.patch);
      expect(admitted.metadata?.annotations).toBeUndefined();
      expect(admitted.spec.containers[0]?.securityContext?.seccompProfile?.localhostProfile).toBe(
        "lockstep/own.json",
      );
      expect(review.warnings.join("\n")).toContain("recorder profile is not ready");
    }
  });

  it("adds to annotations the pod already has", () => {
    const annotated = { ...pod, metadata: { ...pod.metadata, annotations: { team: "a" } } };
    const review = reviewRecordedPodCreate(annotated, ctx, [web]);
    if (!review.allowed) throw new Error(review.message);
    expect(applyPatch(annotated, review.patch).metadata?.annotations).toEqual({
      team: "a",
      [RECORDING_ANNOTATION]: "web",
    });
  });
});
