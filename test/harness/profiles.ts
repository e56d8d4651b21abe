// Creating and deleting profiles in tests, as `kubectl apply --server-side` and `kubectl delete` do.
import { constants } from "node:os";
import * as k8s from "@kubernetes/client-node";
import type { ProfileStatus } from "../../src/api/common.ts";
import {
  API_VERSION,
  APPARMOR_PROFILE_PLURAL,
  GROUP,
  type ProfileKind,
  SECCOMP_PROFILE_PLURAL,
  SYNCED_REVISION_LABEL,
  VERSION,
} from "../../src/api/constants.ts";
import { failedLabelKey } from "../../src/api/labels.ts";
import { nodeHasProfile, type PlacementSource, placementOf } from "../../src/api/node-profiles.ts";
import { isKubeError } from "../../src/kube/errors.ts";
import { waitFor } from "./controlplane.ts";

export type ProfileObjectKind = "SeccompProfile" | "AppArmorProfile";

// Errnos the real-node tests' profiles return and the text glibc's strerror (busybox's perror) prints for each.
export const ENOTSUP = { errno: constants.errno.EOPNOTSUPP, text: "Operation not supported" };
export const EACCES = { errno: constants.errno.EACCES, text: "Permission denied" };

/** A SeccompProfile spec: the runtime's default, but mkdir fails with `errno` (on `nodeSelector`'s nodes). */
export const denyMkdir = (errno: number, nodeSelector?: Record<string, string>) => ({
  baseProfileName: "runtime/default",
  syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: errno }],
  ...(nodeSelector ? { nodeSelector } : {}),
});

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

/** Creates a profile (a POST, as `kubectl create` does: fails when it exists). */
export function createProfile(
  objects: k8s.CustomObjectsApi,
  kind: ProfileObjectKind,
  name: string,
  spec: object,
) {
  return objects.createClusterCustomObject({
    group: GROUP,
    version: VERSION,
    plural: plural(kind),
    body: { apiVersion: API_VERSION, kind, metadata: { name }, spec },
  });
}

export function deleteProfile(kc: k8s.KubeConfig, kind: ProfileObjectKind, name: string) {
  return kc
    .makeApiClient(k8s.CustomObjectsApi)
    .deleteClusterCustomObject({ group: GROUP, version: VERSION, plural: plural(kind), name });
}

/** A profile object as the tests read it: its metadata and the controller's status. */
export interface ProfileObject {
  metadata?: k8s.V1ObjectMeta;
  status?: ProfileStatus;
}

/** The object of a profile, or undefined once it is gone. */
export async function readProfile(
  kc: k8s.KubeConfig,
  kind: ProfileObjectKind,
  name: string,
): Promise<ProfileObject | undefined> {
  return kc
    .makeApiClient(k8s.CustomObjectsApi)
    .getClusterCustomObject({ group: GROUP, version: VERSION, plural: plural(kind), name })
    .catch((error: unknown) => {
      if (isKubeError(error, 404)) return undefined;
      throw error;
    });
}

/**
 * The message of the agent's InstallFailed Event on the profile (in `default`) that gives `reason`: what
 * the owner of the object reads (`node <node>: <reason>: <why>`).
 */
export function installFailedMessage(
  kc: k8s.KubeConfig,
  kind: ProfileObjectKind,
  name: string,
  reason: string,
  timeoutMs?: number,
): Promise<string> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  return waitFor(
    `an InstallFailed Event for ${kind} ${name} with ${reason}`,
    async () => {
      const events = await core.listNamespacedEvent({
        namespace: "default",
        fieldSelector: `involvedObject.kind=${kind},involvedObject.name=${name},reason=InstallFailed`,
      });
      return events.items.find((e) => e.message?.includes(`: ${reason}: `))?.message;
    },
    { timeoutMs },
  );
}

/**
 * Whether `node` holds the profile as the scheduler sees it: the profile object and the Node's labels
 * read through the same rule the webhook's affinity and the controller's status use.
 */
export async function nodeHoldsProfile(
  kc: k8s.KubeConfig,
  kind: ProfileObjectKind,
  name: string,
  node: string,
): Promise<boolean> {
  const profileKind: ProfileKind = kind === "SeccompProfile" ? "seccomp" : "apparmor";
  const objects = kc.makeApiClient(k8s.CustomObjectsApi);
  let obj: PlacementSource;
  try {
    obj = await objects.getClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: plural(kind),
      name,
    });
  } catch (error) {
    // A profile that does not exist is held nowhere (and the webhook refuses pods that name it).
    if (isKubeError(error, 404)) return false;
    throw error;
  }
  const labels = (await kc.makeApiClient(k8s.CoreV1Api).readNode({ name: node })).metadata?.labels ?? {};
  return nodeHasProfile(placementOf(profileKind, obj), labels);
}

/**
 * Whether a node-affinity term the webhook wrote keeps pods off nodes lacking the profile: the revision
 * and failure requirements.
 */
export function termGuardsProfile(
  term: k8s.V1NodeSelectorTerm | undefined,
  kind: ProfileKind,
  name: string,
): boolean {
  const has = (key: string, operator: string) =>
    (term?.matchExpressions ?? []).some((e) => e.key === key && e.operator === operator);
  return has(SYNCED_REVISION_LABEL[kind], "Gt") && has(failedLabelKey(kind, name), "DoesNotExist");
}
