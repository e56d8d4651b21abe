// Which Lockstep profiles a pod needs. Pure: the webhook calls it on the pod in an AdmissionReview.
//
// Seccomp: a Localhost profile whose path is `lockstep/<name>.json` (the prefix makes it unambiguous;
// other localhost paths are someone else's and left alone), at pod level and in every container,
// init container and ephemeral container. AppArmor: every Localhost profile, through the
// `appArmorProfile` field (pod and container level) or the legacy per-container annotation. AppArmor
// names have no Lockstep prefix, so a Localhost AppArmor name is taken to be an AppArmorProfile
// (docs/adr/0030-apparmor-references.md).
import type { V1Container, V1EphemeralContainer, V1Pod, V1SecurityContext } from "@kubernetes/client-node";
import type { ProfileKind } from "./constants.ts";
import { profileNameFromSeccompLocalhost } from "./labels.ts";

export const LEGACY_APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/";

export interface ProfileReference {
  kind: ProfileKind;
  name: string;
  /** The container that needs it; undefined for a pod-level setting (every container inherits it). */
  container: string | undefined;
  /** Where the pod says it, for error messages. */
  field: string;
}

type AnyContainer = V1Container | V1EphemeralContainer;

function containerGroups(pod: V1Pod): { field: string; containers: AnyContainer[] }[] {
  return [
    { field: "spec.initContainers", containers: pod.spec?.initContainers ?? [] },
    { field: "spec.containers", containers: pod.spec?.containers ?? [] },
    { field: "spec.ephemeralContainers", containers: pod.spec?.ephemeralContainers ?? [] },
  ];
}

function fromSecurityContext(
  ctx: Pick<V1SecurityContext, "seccompProfile" | "appArmorProfile"> | undefined,
  container: string | undefined,
  field: string,
): ProfileReference[] {
  const refs: ProfileReference[] = [];
  const seccomp = ctx?.seccompProfile;
  if (seccomp?.type === "Localhost" && seccomp.localhostProfile) {
    const name = profileNameFromSeccompLocalhost(seccomp.localhostProfile);
    if (name !== undefined) refs.push({ kind: "seccomp", name, container, field: `${field}.seccompProfile` });
  }
  const appArmor = ctx?.appArmorProfile;
  if (appArmor?.type === "Localhost" && appArmor.localhostProfile)
    refs.push({
      kind: "apparmor",
      name: appArmor.localhostProfile,
      container,
      field: `${field}.appArmorProfile`,
    });
  return refs;
}

/** Every Lockstep profile reference in the pod, in the order a reader of the pod meets them. */
export function profilesReferencedByPod(pod: V1Pod): ProfileReference[] {
  const refs = fromSecurityContext(pod.spec?.securityContext, undefined, "spec.securityContext");
  for (const { field, containers } of containerGroups(pod))
    containers.forEach((c, i) => {
      refs.push(...fromSecurityContext(c.securityContext, c.name, `${field}[${i}].securityContext`));
    });
  for (const [key, value] of Object.entries(pod.metadata?.annotations ?? {})) {
    if (!key.startsWith(LEGACY_APPARMOR_ANNOTATION_PREFIX) || !value.startsWith("localhost/")) continue;
    refs.push({
      kind: "apparmor",
      name: value.slice("localhost/".length),
      container: key.slice(LEGACY_APPARMOR_ANNOTATION_PREFIX.length),
      field: `metadata.annotations["${key}"]`,
    });
  }
  return refs;
}

/** The distinct profiles among the references, each once. */
export function distinctProfiles(refs: readonly ProfileReference[]): { kind: ProfileKind; name: string }[] {
  const seen = new Map<string, { kind: ProfileKind; name: string }>();
  for (const { kind, name } of refs) seen.set(`${kind}/${name}`, { kind, name });
  return [...seen.values()];
}

/** How a reference reads in a message: `container "web"` or `the pod`. */
export function describeReferrer(ref: ProfileReference): string {
  return ref.container === undefined ? "the pod" : `container ${JSON.stringify(ref.container)}`;
}
