import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { type ProfileView, reviewPod } from "./review.ts";

const pod = (extra: Partial<V1Pod["spec"]> = {}): V1Pod => ({
  metadata: { name: "p" },
  spec: {
    containers: [
      {
        name: "web",
        image: "x",
        securityContext: { seccompProfile: { type: "Localhost", localhostProfile: "lockstep/web.json" } },
      },
    ],
    ...extra,
  },
});
const views = (entries: Record<string, ProfileView>) => (kind: string, name: string) =>
  entries[`${kind}/${name}`];

describe("reviewPod", () => {
  it("leaves pods without Lockstep profiles alone (RuntimeDefault, other localhost paths)", () => {
    const other: V1Pod = {
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
    expect(reviewPod(other, { profile: () => undefined })).toEqual({
      allowed: true,
      patch: [],
      warnings: [],
      profiles: [],
    });
  });

  it("denies a missing or terminating profile, naming the container and the profile", () => {
    expect(reviewPod(pod(), { profile: () => undefined })).toMatchObject({
      allowed: false,
      message: expect.stringMatching(
        /^container "web" references SeccompProfile "web" .*which does not exist/,
      ),
    });
    expect(
      reviewPod(pod(), { profile: views({ "seccomp/web": { terminating: true, installedNodes: 1 } }) }),
    ).toMatchObject({
      allowed: false,
      message: expect.stringContaining("which is being deleted"),
    });
  });

  it("admits with a warning when the profile is installed on no node yet", () => {
    const review = reviewPod(pod(), {
      profile: views({ "seccomp/web": { terminating: false, installedNodes: 0 } }),
    });
    expect(review).toMatchObject({
      allowed: true,
      warnings: [expect.stringMatching(/not installed on any node yet/)],
    });
  });

  it("denies spec.nodeName on a node without the profile, and admits it on one that has it", () => {
    const profile = views({ "seccomp/web": { terminating: false, installedNodes: 1 } });
    expect(reviewPod(pod({ nodeName: "n1" }), { profile, boundNodeLabels: {} })).toMatchObject({
      allowed: false,
      message: expect.stringMatching(
        /spec.nodeName is "n1", which does not have SeccompProfile "web" installed/,
      ),
    });
    expect(
      reviewPod(pod({ nodeName: "n1" }), { profile, boundNodeLabels: { "seccomp.lockstep.dev/web": "abc" } }),
    ).toMatchObject({ allowed: true });
  });
});
