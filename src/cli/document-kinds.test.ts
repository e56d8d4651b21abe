import { describe, expect, it } from "vitest";
import { classifyDocument } from "./document-kinds.ts";

describe("classifyDocument", () => {
  it("knows Lockstep's kinds, plain OCI seccomp JSON, and what is not a profile", () => {
    expect(classifyDocument({ apiVersion: "lockstep.dev/v1alpha1", kind: "SeccompProfile" })).toEqual({
      type: "seccomp-profile",
    });
    expect(classifyDocument({ apiVersion: "lockstep.dev/v1alpha1", kind: "AppArmorProfile" }).type).toBe(
      "apparmor-profile",
    );
    expect(classifyDocument({ defaultAction: "SCMP_ACT_ERRNO" }).type).toBe("oci-seccomp");
    expect(classifyDocument({ syscalls: [] }).type).toBe("oci-seccomp");
    expect(classifyDocument({ apiVersion: "apps/v1", kind: "Deployment" })).toEqual({
      type: "not-a-profile",
      message: "a Deployment (apps/v1) is not a profile",
    });
    expect(classifyDocument({ name: "package" }).type).toBe("not-a-profile");
    expect(classifyDocument("hostname").type).toBe("not-a-profile");
    expect(classifyDocument([1, 2]).type).toBe("not-a-profile");
  });

  it("points SPO's profiles at lockstep import, and says what its other kinds are", () => {
    const spo = classifyDocument({
      apiVersion: "security-profiles-operator.x-k8s.io/v1beta1",
      kind: "SeccompProfile",
    });
    expect(spo).toEqual({
      type: "foreign-profile",
      message: expect.stringMatching(
        /^this is a security-profiles-operator SeccompProfile \(security-profiles-operator\.x-k8s\.io\/v1beta1\): run `lockstep import FILE`/,
      ),
    });
    expect(
      classifyDocument({
        apiVersion: "security-profiles-operator.x-k8s.io/v1alpha1",
        kind: "ProfileBinding",
      }),
    ).toMatchObject({
      type: "foreign-profile",
      message: expect.stringMatching(/Lockstep has no ProfileBinding/),
    });
  });

  it("points a Docker profile at lockstep import, the old single name field included", () => {
    for (const docker of [
      { defaultAction: "SCMP_ACT_ERRNO", syscalls: [{ name: "read", action: "SCMP_ACT_ALLOW" }] },
      { defaultAction: "SCMP_ACT_ERRNO", archMap: [] },
      { syscalls: [{ names: ["read"], action: "SCMP_ACT_ALLOW", includes: {} }] },
    ])
      expect(classifyDocument(docker)).toMatchObject({
        type: "foreign-profile",
        message: expect.stringMatching(/run `lockstep import FILE`/),
      });
  });

  it("tells another version of Lockstep's group from another tool's kind of the same name", () => {
    expect(classifyDocument({ apiVersion: "lockstep.dev/v1", kind: "SeccompProfile" })).toMatchObject({
      message: expect.stringMatching(/write apiVersion: lockstep\.dev\/v1alpha1/),
    });
    expect(classifyDocument({ apiVersion: "example.com/v1", kind: "SeccompProfile" })).toMatchObject({
      type: "foreign-profile",
    });
  });
});
