// The container securityContext a recording proposes, built from the two recorded profiles so a merge of
// recordings gets it from the merged profiles: the capabilities are the AppArmor profile's (only proven
// ones are ever put there), and the root filesystem can be read-only when nothing the profile lets the
// program write lies outside the paths the user will mount writable volumes at. Pure.
import * as z from "zod";
import { type AppArmorProfileSpec, LINUX_CAPABILITIES } from "../../api/apparmor.ts";
import { localhostProfileFor } from "../../api/labels.ts";
import { byKernelOrder, kubernetesCapabilityName } from "./capabilities.ts";
import { writesOutside } from "./files.ts";

const KUBERNETES_CAPABILITIES = LINUX_CAPABILITIES.map(kubernetesCapabilityName);

/** The fields of a Kubernetes container's securityContext that a recording sets. */
export const RecordedSecurityContextSchema = z.strictObject({
  allowPrivilegeEscalation: z.literal(false),
  capabilities: z.strictObject({
    drop: z.tuple([z.literal("ALL")]),
    add: z.array(z.enum(KUBERNETES_CAPABILITIES as [string, ...string[]])).optional(),
  }),
  readOnlyRootFilesystem: z.boolean(),
  seccompProfile: z.strictObject({ type: z.literal("Localhost"), localhostProfile: z.string() }),
  appArmorProfile: z.strictObject({ type: z.literal("Localhost"), localhostProfile: z.string() }),
});
export type RecordedSecurityContext = z.infer<typeof RecordedSecurityContextSchema>;

export interface SecurityContextInput {
  /** metadata.name of the SeccompProfile and of the AppArmorProfile (the same). */
  name: string;
  appArmor: Pick<AppArmorProfileSpec, "capabilities" | "paths">;
  /** Directories that will be writable volumes in the pod. */
  writable: readonly string[];
}

export function recordedSecurityContext(input: SecurityContextInput): RecordedSecurityContext {
  const add = [...(input.appArmor.capabilities ?? [])].sort(byKernelOrder).map(kubernetesCapabilityName);
  return {
    allowPrivilegeEscalation: false,
    capabilities: add.length === 0 ? { drop: ["ALL"] } : { drop: ["ALL"], add },
    readOnlyRootFilesystem: writesOutside(input.appArmor.paths ?? {}, input.writable).length === 0,
    seccompProfile: { type: "Localhost", localhostProfile: localhostProfileFor("seccomp", input.name) },
    appArmorProfile: { type: "Localhost", localhostProfile: localhostProfileFor("apparmor", input.name) },
  };
}
