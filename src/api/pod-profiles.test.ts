// Which AppArmor names in a pod are Lockstep's: only `lockstep.<object name>`, in the field and in the
// legacy annotation; the runtime's and the host's names are left alone (docs/adr/0027-apparmor-kernel-names.md).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { appArmorKernelName, isValidProfileObjectName } from "./labels.ts";
import { type AdmittedPod, isLockstepAppArmorName, podProfileSettings } from "./pod-profiles.ts";

function podWith(localhostProfile: string): AdmittedPod {
  return {
    metadata: {
      annotations: {
        "container.apparmor.security.beta.kubernetes.io/legacy": `localhost/${localhostProfile}`,
      },
    },
    spec: {
      securityContext: { appArmorProfile: { type: "Localhost", localhostProfile } },
      containers: [
        { name: "web", securityContext: { appArmorProfile: { type: "Localhost", localhostProfile } } },
      ],
    },
  };
}

describe("podProfileSettings: AppArmor", () => {
  it("finds the AppArmorProfile of a lockstep.<name> in the field, at pod and container level, and in the annotation", () => {
    const settings = podProfileSettings(podWith("lockstep.web"));
    expect(settings.invalid).toEqual([]);
    expect(settings.references.map((r) => [r.kind, r.name, r.field])).toEqual([
      ["apparmor", "web", "spec.securityContext.appArmorProfile.localhostProfile"],
      ["apparmor", "web", "spec.containers[0].securityContext.appArmorProfile.localhostProfile"],
      ["apparmor", "web", 'metadata.annotations["container.apparmor.security.beta.kubernetes.io/legacy"]'],
    ]);
  });

  it.each([
    "cri-containerd.apparmor.d",
    "docker-default",
    "crio-default",
    "unconfined",
    "web",
    "Lockstep.web",
    "lockstep",
    "lockstep/web",
    ":lockstep:web",
  ])("leaves %s alone: not a Lockstep name", (name) => {
    expect(isLockstepAppArmorName(name)).toBe(false);
    expect(podProfileSettings(podWith(name))).toEqual({ references: [], invalid: [] });
  });

  it.each([
    "lockstep.",
    "lockstep.Web",
    "lockstep.web/x",
    "lockstep.-web",
    "lockstep.web//hat",
    `lockstep.${"a".repeat(254)}`,
  ])("refuses %s: in Lockstep's name space, but no object can have it", (name) => {
    const settings = podProfileSettings(podWith(name));
    expect(settings.references).toEqual([]);
    expect(settings.invalid).toHaveLength(3);
    expect(settings.invalid[0]?.message).toBe(
      `${JSON.stringify(name)} names no AppArmorProfile: after "lockstep." must come the object's name (lower-case letters, digits, "-" and ".")`,
    );
  });

  it("ignores Localhost without a name, and RuntimeDefault", () => {
    const pod: AdmittedPod = {
      spec: {
        securityContext: { appArmorProfile: { type: "RuntimeDefault" } },
        containers: [{ name: "c", securityContext: { appArmorProfile: { type: "Localhost" } } }],
      },
    };
    expect(podProfileSettings(pod)).toEqual({ references: [], invalid: [] });
  });

  it("reads back every object's kernel name as that object", () => {
    const objectName = fc.stringMatching(/^[a-z0-9][a-z0-9.-]{0,40}$/).filter(isValidProfileObjectName);
    fc.assert(
      fc.property(objectName, (name) => {
        const refs = podProfileSettings(podWith(appArmorKernelName(name))).references;
        expect(refs.map((r) => r.name)).toEqual([name, name, name]);
      }),
    );
  });
});
