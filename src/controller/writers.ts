// Everything the controller writes, each one a single API call: the in-use finalizer (conditional on
// the resourceVersion it read or its own status write returned), the status subresource (a merge patch of what changed), and Events for
// what a cluster operator must see. A profile deleted meanwhile is not an error: there is nothing left
// to write to.
import type { ProfileStatus } from "../api/common.ts";
import {
  API_VERSION,
  OBJECT_KIND,
  PROFILE_EVENTS_NAMESPACE,
  type ProfileKind,
  profilePath,
} from "../api/constants.ts";
import type { KubeClient } from "../kube/client.ts";
import { isKubeError, kubeErrorMessage } from "../kube/errors.ts";
import type { Logger } from "../kube/logger.ts";
import type { ProfileObject } from "../kube/profile-cache.ts";

const CONTROLLER = "lockstep-controller";

export class ProfileWriter {
  private readonly client: KubeClient;
  private readonly log: Logger;

  constructor(client: KubeClient, log: Logger) {
    this.client = client;
    this.log = log;
  }

  /** Sets the finalizers: the object as the write left it, undefined when it is gone. */
  async setFinalizers(
    kind: ProfileKind,
    obj: ProfileObject,
    finalizers: string[],
  ): Promise<ProfileObject | undefined> {
    try {
      // resourceVersion makes the patch conditional: a concurrent change to finalizers is not
      // overwritten; the 409 sends the key back to the queue to retry from a fresher cache.
      return await this.client.patch<ProfileObject>(profilePath(kind, obj.metadata?.name ?? ""), "merge", {
        metadata: { finalizers, resourceVersion: obj.metadata?.resourceVersion },
      });
    } catch (error) {
      if (!isKubeError(error, 404)) throw error;
      return undefined;
    }
  }

  /** Patches the status subresource: the object as the write left it, undefined when it is gone. */
  async patchStatus(kind: ProfileKind, name: string, patch: unknown): Promise<ProfileObject | undefined> {
    try {
      return await this.client.patch<ProfileObject>(`${profilePath(kind, name)}/status`, "merge", patch);
    } catch (error) {
      if (isKubeError(error, 404)) return undefined;
      throw error;
    }
  }

  /** An Event on the profile; failing to record one is logged, never fatal to the reconcile. */
  async recordEvent(kind: ProfileKind, obj: ProfileObject, status: ProfileStatus): Promise<void> {
    const ready = status.conditions?.find((c) => c.type === "Ready");
    const now = new Date().toISOString();
    try {
      await this.client.create(`/api/v1/namespaces/${PROFILE_EVENTS_NAMESPACE}/events`, {
        metadata: { generateName: `${(obj.metadata?.name ?? "").slice(0, 200)}.` },
        involvedObject: {
          apiVersion: API_VERSION,
          kind: OBJECT_KIND[kind],
          name: obj.metadata?.name,
          uid: obj.metadata?.uid,
        },
        reason: ready?.reason ?? status.phase ?? "",
        message: ready?.message ?? status.phase ?? "",
        type: status.phase === "Installed" ? "Normal" : "Warning",
        source: { component: CONTROLLER },
        reportingComponent: CONTROLLER,
        reportingInstance: process.env.HOSTNAME ?? CONTROLLER,
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      });
    } catch (error) {
      this.log.warn({ err: kubeErrorMessage(error) }, "could not record an Event");
    }
  }
}
