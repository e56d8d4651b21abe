// The ProfileRecordings that record now, by namespace, from one list+watch. Only what decides a review is
// kept of each object (name, selector, phase, stop, deletion): status.nodes is most of a recording's size
// and changes with every agent's report, and no review reads it.
import { formatZodIssues } from "../api/common.ts";
import {
  isRecording,
  PROFILE_RECORDING_KIND,
  ProfileRecordingSchema,
  profileRecordingPath,
  recorderProfileName,
} from "../api/profile-recording.ts";
import type { ActiveRecording } from "../api/recording-patch.ts";
import type { KubeClient } from "../kube/client.ts";
import { Informer, type KubeObject } from "../kube/informer.ts";
import type { Logger } from "../kube/logger.ts";
import { logWatchFailures } from "../kube/profile-cache.ts";

type RecordingObject = KubeObject & { spec?: unknown; status?: { phase?: unknown } };

/** A ProfileRecording with every node's entry full is about 1 MB (RECORDING_LIMITS); the list pages by it. */
const MAX_RECORDING_OBJECT_BYTES = 1536 * 1024;

const NONE: readonly ActiveRecording[] = [];

export class RecordingCache {
  private readonly informer: Informer<RecordingObject>;
  private readonly log: Logger;
  /**
   * The active recordings of each namespace that has any, kept from the watch's events and parsed once
   * per change: a review reads an array, and a namespace without recordings stores nothing.
   */
  private readonly active = new Map<string, Map<string, ActiveRecording>>();

  constructor(client: KubeClient, log: Logger, isStopping: () => boolean) {
    this.log = log;
    this.informer = new Informer<RecordingObject>(client, {
      path: profileRecordingPath(),
      onError: logWatchFailures(log, "profile recordings", isStopping),
      maxObjectBytes: MAX_RECORDING_OBJECT_BYTES,
      transform: (o) => {
        const r = o as RecordingObject;
        return {
          apiVersion: r.apiVersion,
          kind: r.kind,
          metadata: {
            name: r.metadata?.name,
            namespace: r.metadata?.namespace,
            ...(r.metadata?.deletionTimestamp ? { deletionTimestamp: r.metadata.deletionTimestamp } : {}),
          },
          spec: r.spec,
          status: { phase: r.status?.phase },
        } as KubeObject;
      },
    });
    this.informer.on("add", (o) => this.put(o));
    this.informer.on("update", (o) => this.put(o));
    this.informer.on("delete", (o) => this.remove(o.metadata?.namespace ?? "", o.metadata?.name ?? ""));
  }

  private put(o: RecordingObject): void {
    const namespace = o.metadata?.namespace ?? "";
    const name = o.metadata?.name ?? "";
    const parsed = ProfileRecordingSchema.safeParse(o);
    if (!parsed.success) {
      // The CRD accepts what the schema does (recording-crd.ts): a recording that passed one and not
      // the other is a bug to see in the log, and records no pod.
      this.log.error(
        { namespace, err: formatZodIssues(PROFILE_RECORDING_KIND, name, parsed.error) },
        "ignoring a ProfileRecording that does not parse",
      );
      this.remove(namespace, name);
      return;
    }
    if (!isRecording(parsed.data)) {
      this.remove(namespace, name);
      return;
    }
    const held = this.active.get(namespace) ?? new Map<string, ActiveRecording>();
    held.set(name, {
      name,
      podSelector: parsed.data.spec.podSelector,
      recorderProfile: recorderProfileName(namespace, name),
    });
    this.active.set(namespace, held);
  }

  private remove(namespace: string, name: string): void {
    const held = this.active.get(namespace);
    held?.delete(name);
    if (held?.size === 0) this.active.delete(namespace);
  }

  start(): Promise<void> {
    return this.informer.start();
  }

  stop(): Promise<void> {
    return this.informer.stop();
  }

  notLiveReason(): string | undefined {
    const reason = this.informer.notLiveReason();
    return reason && `profile recordings cache: ${reason}`;
  }

  /** The recordings of a namespace that record now. */
  activeIn(namespace: string): readonly ActiveRecording[] {
    const held = this.active.get(namespace);
    return held ? [...held.values()] : NONE;
  }
}
