// What a sync decides from, read for one agent: the caches (profiles, this Node, the pods bound here),
// the agent's folder, the kernel's AppArmor list and the ownership record. I/O only; what the reads
// mean is decided by pure modules: record-keeping.ts (restore or set the record aside), node-labels.ts
// (the planner's view of this Node), renderingRevision (the revision each rendering must be claimed
// at), foreign-entries.ts (what to log once), sync-outcome.ts (whether to read back).
import type { V1Node } from "@kubernetes/client-node";
import type { ProfileKind } from "../src/api/constants.ts";
import { profileRevision, withRenderingRevisions } from "../src/api/node-profiles.ts";
import type { RenderedProfile } from "../src/api/profiles.ts";
import type { EventRecorder } from "../src/kube/event-recorder.ts";
import type { Informer, KubeObject } from "../src/kube/informer.ts";
import type { Logger } from "../src/kube/logger.ts";
import type { ProfileCache } from "../src/kube/profile-cache.ts";
import { type AppArmorPaths, detectAppArmor, loadedProfiles, readBootId } from "./apparmor.ts";
import { nodeWarning } from "./events.ts";
import { ForeignEntryMemo } from "./foreign-entries.ts";
import { observedNodeLabels } from "./node-labels.ts";
import type { OwnershipRecord } from "./ownership-record.ts";
import { type NodeObservation, recordToPlanFrom, type SyncPlan } from "./planner.ts";
import { restoreRecord, unreadableRecordMessage } from "./record-keeping.ts";
import type { RevisionClaims } from "./revision-claims.ts";
import type { SeccompDir } from "./seccomp-dir.ts";
import { planActsOnNode } from "./sync-outcome.ts";

export interface NodeObserverSources {
  nodeName: string;
  log: Logger;
  appArmor: AppArmorPaths;
  dir: SeccompDir;
  profiles: ProfileCache;
  /** Metadata of the not-finished pods bound to this node: their labels say which profiles they use. */
  pods: Informer<KubeObject>;
  claims: RevisionClaims;
  events: EventRecorder;
}

export class NodeObserver {
  private readonly src: NodeObserverSources;
  private readonly foreign = new ForeignEntryMemo();
  /** Whether this kernel can load AppArmor profiles; read once, at start. */
  appArmorAvailable = false;
  /** This boot's id, read at start: the record's loaded profiles count only when written in this boot. */
  private bootId = "";

  constructor(sources: NodeObserverSources) {
    this.src = sources;
  }

  /** Reads what holds for the agent's whole run: whether the kernel has AppArmor, and this boot's id. */
  async detect(): Promise<void> {
    this.appArmorAvailable = await detectAppArmor(this.src.appArmor);
    this.bootId = await readBootId(this.src.appArmor);
  }

  /** Everything the planner decides from, read from the caches, the folder and the kernel. */
  async observe(node: V1Node): Promise<NodeObservation> {
    const { dir, log, profiles, claims } = this.src;
    const nodeLabels = observedNodeLabels(node.metadata?.labels, this.appArmorAvailable);
    const disk = await dir.observe();
    for (const [entry, why] of this.foreign.firstSeen(disk.unusable))
      log.warn({ dir: dir.path, entry, why }, "leaving alone a folder entry the agent did not write");
    const record = await this.ownershipRecord(disk, nodeLabels);
    const kernel = await this.kernel();
    // From here on synchronous: the profiles and the revisions the caches were listed at are one snapshot.
    return {
      nodeLabels,
      // Rendered once per spec change, not once per sync (src/kube/profile-cache.ts); the revision is
      // the object's as it is now, which a status or metadata write may have changed.
      seccompProfiles: this.withRevisions("seccomp"),
      appArmorProfiles: this.withRevisions("apparmor"),
      appArmorAvailable: this.appArmorAvailable,
      disk,
      kernel,
      record,
      podLabels: this.src.pods.list().map((pod) => pod.metadata?.labels ?? {}),
      revisionFloor: claims.floor({
        seccomp: profiles.listedResourceVersion("seccomp"),
        apparmor: profiles.listedResourceVersion("apparmor"),
      }),
    };
  }

  /**
   * Labels follow the disk and the kernel: both read back after the plan acted on them (when it touched
   * neither, they were read a moment ago, within this sync). `record`: as carrying the plan out left it.
   */
  async readBack(
    observed: NodeObservation,
    plan: SyncPlan,
    record: OwnershipRecord,
  ): Promise<NodeObservation> {
    return planActsOnNode(plan)
      ? { ...observed, disk: await this.src.dir.observe(), kernel: await this.kernel(), record }
      : { ...observed, record };
  }

  private async kernel(): Promise<ReadonlySet<string>> {
    return this.appArmorAvailable ? await loadedProfiles(this.src.appArmor) : new Set<string>();
  }

  /** The cached renderings of a kind, each at its rendering's revision over its inheritance chain. */
  private withRevisions(kind: ProfileKind): RenderedProfile[] {
    const { profiles } = this.src;
    return withRenderingRevisions(kind, profiles.rendered(kind).values(), (name) => {
      const obj = profiles.get(kind, name);
      return obj && { revision: profileRevision(obj), spec: obj.spec };
    });
  }

  /** The ownership record for this boot, stored when it changed (record-keeping.ts decides). */
  private async ownershipRecord(
    disk: NodeObservation["disk"],
    nodeLabels: Record<string, string>,
  ): Promise<OwnershipRecord> {
    const { dir, log, nodeName } = this.src;
    const stored = await dir.readRecord();
    const planned = recordToPlanFrom(
      stored,
      { disk, seccompProfiles: this.withRevisions("seccomp"), nodeLabels },
      this.bootId,
    );
    const restore = restoreRecord(stored, planned, this.bootId);
    if (restore.note) log[restore.note.level](restore.note.fields, restore.note.message);
    if (restore.setAside !== undefined) {
      const aside = await dir.setRecordAside(new Date());
      const { message, strays } = unreadableRecordMessage(
        dir.path,
        restore.setAside,
        aside,
        planned,
        disk.files.keys(),
      );
      log.error({ problem: restore.setAside, aside, strays }, message);
      await this.src.events.record(nodeWarning(nodeName, "OwnershipRecordUnreadable", message));
    }
    if (restore.store) await dir.writeRecord(restore.record);
    return restore.record;
  }
}
