// Creating and deleting profiles in tests, as `kubectl apply --server-side` and `kubectl delete` do.
import * as k8s from "@kubernetes/client-node";
import {
  API_VERSION,
  APPARMOR_PROFILE_PLURAL,
  GROUP,
  SECCOMP_PROFILE_PLURAL,
  VERSION,
} from "../../src/api/constants.ts";

export type ProfileObjectKind = "SeccompProfile" | "AppArmorProfile";

const plural = (kind: ProfileObjectKind) =>
  kind === "SeccompProfile" ? SECCOMP_PROFILE_PLURAL : APPARMOR_PROFILE_PLURAL;

export function applyProfile(kc: k8s.KubeConfig, kind: ProfileObjectKind, name: string, spec: object) {
  const body = { apiVersion: API_VERSION, kind, metadata: { name }, spec };
  return kc
    .makeApiClient(k8s.CustomObjectsApi)
    .patchClusterCustomObject(
      { group: GROUP, version: VERSION, plural: plural(kind), name, body, fieldManager: "test", force: true },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.ServerSideApply),
    );
}

export function deleteProfile(kc: k8s.KubeConfig, kind: ProfileObjectKind, name: string) {
  return kc
    .makeApiClient(k8s.CustomObjectsApi)
    .deleteClusterCustomObject({ group: GROUP, version: VERSION, plural: plural(kind), name });
}
