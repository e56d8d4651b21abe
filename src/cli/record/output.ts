// What `lockstep record` prints: the three parts as one multi-document YAML for `kubectl apply`, or one
// part alone. Pure.
import { stringify } from "yaml";
import type { AppArmorProfileSpec } from "../../api/apparmor.ts";
import { API_VERSION, APPARMOR_PROFILE_KIND, SECCOMP_PROFILE_KIND } from "../../api/constants.ts";
import type { LinuxSeccomp } from "../../api/seccomp.ts";
import type { RecordedSecurityContext } from "./security-context.ts";

export const RECORDING_PARTS = ["seccomp", "apparmor", "securitycontext"] as const;
export type RecordingPart = (typeof RECORDING_PARTS)[number];

export interface RecordingOutput {
  /** metadata.name of both profiles. */
  name: string;
  seccomp: LinuxSeccomp;
  appArmor: AppArmorProfileSpec;
  securityContext: RecordedSecurityContext;
}

/** The SeccompProfile alone: all `--only seccomp` needs, without the analyses the other parts take. */
export function formatSeccompProfile(name: string, seccomp: LinuxSeccomp): string {
  return stringify({
    apiVersion: API_VERSION,
    kind: SECCOMP_PROFILE_KIND,
    metadata: { name },
    spec: seccomp,
  });
}

export function formatRecording(recording: RecordingOutput, only?: RecordingPart): string {
  const metadata = { name: recording.name };
  const parts: Record<RecordingPart, string> = {
    seccomp: formatSeccompProfile(recording.name, recording.seccomp),
    apparmor: stringify({
      apiVersion: API_VERSION,
      kind: APPARMOR_PROFILE_KIND,
      metadata,
      spec: recording.appArmor,
    }),
    securitycontext: stringify({ securityContext: recording.securityContext }),
  };
  if (only !== undefined) return parts[only];
  // Not an object, so a comment: the stream stays ready for kubectl apply, which skips empty documents.
  const comment = parts.securitycontext
    .trimEnd()
    .split("\n")
    .map((line) => `# ${line}\n`)
    .join("");
  return [
    parts.seccomp,
    parts.apparmor,
    `# The container's securityContext: paste it into the pod's container.\n${comment}`,
  ].join("---\n");
}
