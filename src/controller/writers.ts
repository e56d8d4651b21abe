// Everything the controller writes, each one a single API call: the in-use finalizer (conditional on
// the resourceVersion it read or its own status write returned; src/kube/finalizer.ts decides when),
// the status subresource (a merge patch of what changed), and Events for what a cluster operator must
// see (src/kube/event-recorder.ts). A profile deleted meanwhile is not an error: there is nothing left
// to write to. Every write's answer is kept as this replica's own write (src/kube/own-writes.ts).
import type { ProfileStatus } from "../api/common.ts";
import {
  IN_USE_FINALIZER,
  PROFILE_EVENTS_NAMESPACE,
  type ProfileKind,
  profilePath,
} from "../api/constants.ts";
import type { KubeClient } from "../kube/client.ts";
import { isKubeError } from "../kube/errors.ts";
import { EventRecorder } from "../kube/event-recorder.ts";
import type { Finalizer } from "../kube/finalizer.ts";
import type { Logger } from "../kube/logger.ts";
import { OwnWrites } from "../kube/own-writes.ts";
import type { ProfileObject } from "../kube/profile-cache.ts";
import { profileKey } from "./install-failures.ts";
import { phaseEventFields, type StatusWrite } from "./status.ts";

const CONTROLLER = "lockstep-controller";

export class ProfileWriter {
  private readonly client: KubeClient;
  private readonly events: EventRecorder;
  /** Per profile, the status this replica's last write left, until the watch delivers that write. */
  readonly own = new OwnWrites<ProfileStatus | undefined>();

  constructor(client: KubeClient, log: Logger) {
    this.client = client;
    this.events = new EventRecorder({
      client,
      namespace: PROFILE_EVENTS_NAMESPACE,
      source: { component: CONTROLLER, instance: process.env.HOSTNAME ?? CONTROLLER },
      log,
    });
  }

  /** The in-use finalizer of one kind's profiles. */
  inUseFinalizer(kind: ProfileKind): Finalizer<ProfileObject> {
    return { name: IN_USE_FINALIZER, patch: (obj, finalizers) => this.setFinalizers(kind, obj, finalizers) };
  }

  /** The status as it stands: the cache's, or this replica's own write while the cache is behind it. */
  currentStatus(kind: ProfileKind, obj: ProfileObject): ProfileStatus | undefined {
    const key = profileKey(kind, obj.metadata?.name ?? "");
    return this.own.current(key, obj.metadata?.resourceVersion, obj.status);
  }

  /** Patches the status subresource: the object as the write left it, undefined when it is gone. */
  async patchStatus(kind: ProfileKind, name: string, patch: unknown): Promise<ProfileObject | undefined> {
    try {
      const after = await this.client.patch<ProfileObject>(
        `${profilePath(kind, name)}/status`,
        "merge",
        patch,
      );
      this.own.wrote(profileKey(kind, name), after.metadata?.resourceVersion, after.status);
      return after;
    } catch (error) {
      if (isKubeError(error, 404)) return undefined;
      throw error;
    }
  }

  /**
   * Carries out what statusWrite (status.ts) decided, announcing a phase change. `current`: the object
   * as it stands after, undefined while the cache is behind this replica's own write (the watch wakes
   * the profile again) or the profile is gone; `patched`: a status patch went out.
   */
  async writeStatus(
    kind: ProfileKind,
    obj: ProfileObject,
    next: ProfileStatus,
    write: Exclude<StatusWrite, { holdMs: number }>,
    log: Logger,
  ): Promise<{ current: ProfileObject | undefined; patched: boolean }> {
    const name = obj.metadata?.name ?? "";
    // The object as it stands is the cache's, or what this replica's own last write returned.
    const behind = this.own.cacheBehind(profileKey(kind, name), obj.metadata?.resourceVersion);
    if (write.patch === undefined) return { current: behind ? undefined : obj, patched: false };
    const current = await this.patchStatus(kind, name, write.patch);
    if (!current) return { current, patched: false };
    if (write.phaseChanged) log.info({ phase: next.phase, ready: next.ready }, "status changed");
    if (write.event) await this.recordPhase(kind, obj, next);
    return { current, patched: true };
  }

  /** An Event on the profile for its new phase; failing to record one is logged, never fatal. */
  async recordPhase(kind: ProfileKind, obj: ProfileObject, status: ProfileStatus): Promise<void> {
    await this.events.record(
      phaseEventFields(kind, { name: obj.metadata?.name ?? "", uid: obj.metadata?.uid }, status),
    );
  }

  /** Sets the finalizers: the object as the write left it, undefined when it is gone. */
  private async setFinalizers(
    kind: ProfileKind,
    obj: ProfileObject,
    finalizers: string[],
  ): Promise<ProfileObject | undefined> {
    const name = obj.metadata?.name ?? "";
    try {
      // resourceVersion makes the patch conditional: a concurrent change to finalizers is not
      // overwritten; the 409 sends the key back to the queue to retry from a fresher cache.
      const after = await this.client.patch<ProfileObject>(profilePath(kind, name), "merge", {
        metadata: { finalizers, resourceVersion: obj.metadata?.resourceVersion },
      });
      this.own.wrote(profileKey(kind, name), after.metadata?.resourceVersion, after.status);
      return after;
    } catch (error) {
      if (!isKubeError(error, 404)) throw error;
      return undefined;
    }
  }
}
