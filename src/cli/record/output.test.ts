import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { parseAppArmorProfile } from "../../api/apparmor.ts";
import { parseSeccompProfile } from "../../api/seccomp.ts";
import { formatRecording, type RecordingOutput } from "./output.ts";
import { recordedSecurityContext } from "./security-context.ts";

const appArmor = {
  executables: ["/usr/bin/app"],
  capabilities: ["chown" as const],
  mode: "enforce" as const,
};
const recording: RecordingOutput = {
  name: "app",
  seccomp: {
    defaultAction: "SCMP_ACT_ERRNO",
    defaultErrnoRet: 1,
    syscalls: [{ names: ["read"], action: "SCMP_ACT_ALLOW" }],
  },
  appArmor,
  securityContext: recordedSecurityContext({ name: "app", appArmor, writable: [] }),
};

describe("formatRecording", () => {
  it("prints both profiles as objects and the securityContext as a comment kubectl apply skips", () => {
    expect(formatRecording(recording)).toBe(`apiVersion: lockstep.dev/v1alpha1
kind: SeccompProfile
metadata:
  name: app
spec:
  defaultAction: SCMP_ACT_ERRNO
  defaultErrnoRet: 1
  syscalls:
    - names:
        - read
      action: SCMP_ACT_ALLOW
---
apiVersion: lockstep.dev/v1alpha1
kind: AppArmorProfile
metadata:
  name: app
spec:
  executables:
    - /usr/bin/app
  capabilities:
    - chown
  mode: enforce
---
# The container's securityContext: paste it into the pod's container.
# securityContext:
#   allowPrivilegeEscalation: false
#   capabilities:
#     drop:
#       - ALL
#     add:
#       - CHOWN
#   readOnlyRootFilesystem: true
#   seccompProfile:
#     type: Localhost
#     localhostProfile: lockstep/app.json
#   appArmorProfile:
#     type: Localhost
#     localhostProfile: lockstep.app
`);
    const [seccomp, profile, comment] = parseAllDocuments(formatRecording(recording)).map((d) => d.toJS());
    expect(parseSeccompProfile(seccomp).ok).toBe(true);
    expect(parseAppArmorProfile(profile).ok).toBe(true);
    expect(comment).toBeNull();
  });

  it("prints one part alone, the securityContext as plain YAML", () => {
    expect(parseAllDocuments(formatRecording(recording, "securitycontext"))[0]?.toJS()).toEqual({
      securityContext: recording.securityContext,
    });
    expect(formatRecording(recording, "seccomp")).toMatch(
      /^apiVersion: lockstep.dev\/v1alpha1\nkind: SeccompProfile\n/,
    );
    expect(formatRecording(recording, "apparmor")).toMatch(
      /^apiVersion: lockstep.dev\/v1alpha1\nkind: AppArmorProfile\n/,
    );
  });
});
