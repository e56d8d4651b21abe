// The agent's part in a ProfileRecording (docs/adr/0039-profile-recording.md): the audit collector's
// ObservedCall batches in; for each call of a pod on this node that a live recording records (the pod's
// RECORDING_ANNOTATION names it and its recorder profile exists, not being deleted), the call goes into
// the ledger (recording-ledger.ts, capped); at most every REPORT_INTERVAL_MS the node's entry of each
// recording with news is server-side applied to the recording's status subresource, under a field
// manager of this node's own, so agents never overwrite each other's entries (and the policy
// lockstep-agent-own-recording-entry refuses any other write). When a recorder profile goes (the
// recording stopped), what is held for it is applied at once and then forgotten.
import { API_VERSION, RECORDING_ANNOTATION } from "../src/api/constants.ts";
import {
  liveRecordings,
  PROFILE_RECORDING_KIND,
  profileRecordingPath,
} from "../src/api/profile-recording.ts";
import { BurstCollector } from "../src/kube/burst-collector.ts";
import type { KubeClient } from "../src/kube/client.ts";
import { isKubeError, kubeErrorCode, kubeErrorMessage } from "../src/kube/errors.ts";
import type { KubeObject } from "../src/kube/informer.ts";
import type { Logger } from "../src/kube/logger.ts";
import type { ObservedCall } from "./audit-events.ts";
import { RecordingLedger } from "./recording-ledger.ts";

export type { ObservedCall };

/**
 * The recording a pod of this node belongs to, from the agent's cache of its pods' metadata: the pod's
 * RECORDING_ANNOTATION, when the cached pod is the one that made the call (same uid: a pod recreated under
 * the same name is another pod).
 */
export function podRecordingFrom(
  pod: (name: string, namespace: string) => KubeObject | undefined,
): RecordingReporterOptions["podRecording"] {
  return (namespace, name, podUID) => {
    const cached = pod(name, namespace);
    return cached?.metadata?.uid === podUID
      ? cached.metadata?.annotations?.[RECORDING_ANNOTATION]
      : undefined;
  };
}

/** What the audit collector could not keep of a batch (node-agent/audit-events.ts CallBatch). */
export interface DroppedCalls {
  cappedPods: ReadonlyMap<string, { identity: { namespace: string; pod: string; podUID: string } }>;
  droppedOverTotal: number;
}

/**
 * The live recordings whose result may miss calls because the collector dropped some: those of the pods
 * it capped, and every live one when it dropped calls of pods it could not name (the node's total cap).
 * A recorded profile built from an incomplete set would refuse calls the workload makes. Pure.
 */
export function recordingsThatLostCalls(
  dropped: DroppedCalls,
  live: ReadonlySet<string>,
  podRecording: RecordingReporterOptions["podRecording"],
): Set<string> {
  if (dropped.droppedOverTotal > 0) return new Set(live);
  const lost = new Set<string>();
  for (const [podUID, { identity }] of dropped.cappedPods) {
    const name = podRecording(identity.namespace, identity.pod, podUID);
    const recording = name === undefined ? undefined : `${identity.namespace}/${name}`;
    if (recording !== undefined && live.has(recording)) lost.add(recording);
  }
  return lost;
}

/** What noteSeccompProfile reads of a profile: its annotations and whether it is being deleted. */
type RecorderCandidate = { metadata?: { annotations?: Record<string, string>; deletionTimestamp?: unknown } };

/** How often, at most, a recording's entry is applied (the controller's settle time allows for it). */
export const REPORT_INTERVAL_MS = 2_000;

/** The field manager of a node's agent: one per node, so each owns exactly its own entry. */
export const recordingFieldManager = (node: string) => `lockstep-agent-${node}`;

export interface RecordingReporterOptions {
  client: KubeClient;
  nodeName: string;
  log: Logger;
  /** The recording a pod on this node belongs to (its RECORDING_ANNOTATION), when the pod is that pod. */
  podRecording(namespace: string, pod: string, podUID: string): string | undefined;
  intervalMs?: number;
  ledger?: RecordingLedger;
}

export class RecordingReporter {
  private readonly opts: RecordingReporterOptions;
  private readonly ledger: RecordingLedger;
  /** `<namespace>/<name>` of each recording whose recorder profile is live. */
  private live: ReadonlySet<string> = new Set();
  private readonly burst: BurstCollector<string, Set<string>>;
  /** Applies one after another: an older entry must never land after a newer one. */
  private applying: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(opts: RecordingReporterOptions) {
    this.opts = opts;
    this.ledger = opts.ledger ?? new RecordingLedger();
    const interval = opts.intervalMs ?? REPORT_INTERVAL_MS;
    this.burst = new BurstCollector<string, Set<string>>({
      empty: () => new Set(),
      add: (keys, key) => keys.add(key),
      // A fixed time after the first news: a steady stream of calls is applied once per interval.
      waitMs: (sinceFirstMs) => interval - sinceFirstMs,
      flush: (keys) => this.apply(keys),
    });
  }

  /** The recorder profiles seen live, by profile name: what noteSeccompProfile keeps current. */
  private readonly recorders = new Map<string, string>();

  /**
   * A SeccompProfile changed (undefined: deleted): the agent calls this for each, so the live recordings
   * are kept in time independent of how many profiles there are.
   */
  noteSeccompProfile(name: string, profile: RecorderCandidate | undefined): void {
    const [ref] = profile === undefined ? [] : liveRecordings([profile]);
    if (ref === undefined ? !this.recorders.delete(name) : this.recorders.get(name) === ref) return;
    if (ref !== undefined) this.recorders.set(name, ref);
    this.setLiveRecordings(new Set(this.recorders.values()));
  }

  /** The recordings whose recorder profile is live now; those that ended are applied once more and forgotten. */
  setLiveRecordings(live: ReadonlySet<string>): void {
    const ended = [...this.live].filter((r) => !live.has(r) && this.ledger.held.includes(r));
    this.live = new Set(live);
    if (ended.length > 0) this.apply(new Set(ended), { forget: true });
  }

  /** A batch from the audit collector, with what it had to drop of it. */
  onCalls(batch: readonly ObservedCall[], dropped?: DroppedCalls): void {
    if (this.stopped || this.live.size === 0) return;
    for (const recording of dropped
      ? recordingsThatLostCalls(dropped, this.live, this.opts.podRecording)
      : []) {
      this.ledger.lostCalls(recording);
      this.burst.add(recording);
    }
    for (const call of batch) {
      const name = this.opts.podRecording(call.namespace, call.pod, call.podUID);
      if (name === undefined) continue;
      const recording = `${call.namespace}/${name}`;
      if (!this.live.has(recording)) continue;
      this.ledger.add(recording, call);
      this.burst.add(recording);
    }
  }

  /** Waits for applies under way; what was not applied yet is dropped. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.burst.stop();
    await this.applying;
  }

  /** Applies the entries of `recordings`, in turn after any apply under way. */
  private apply(recordings: ReadonlySet<string>, { forget = false } = {}): void {
    this.applying = this.applying.then(async () => {
      for (const recording of recordings) {
        await this.applyEntry(recording);
        if (forget) this.ledger.forget(recording);
      }
    });
  }

  private async applyEntry(recording: string): Promise<void> {
    const { client, nodeName, log } = this.opts;
    const entry = this.ledger.entry(recording, nodeName, new Date());
    if (!entry) return;
    const [namespace = "", name = ""] = recording.split("/");
    try {
      await client.patch(
        `${profileRecordingPath(namespace, name)}/status`,
        "apply",
        {
          apiVersion: API_VERSION,
          kind: PROFILE_RECORDING_KIND,
          metadata: { name, namespace },
          status: { nodes: [entry] },
        },
        // force: this manager is the only one that ever writes this node's entry.
        { query: { fieldManager: recordingFieldManager(nodeName), force: true } },
      );
    } catch (error) {
      log.warn({ recording, err: kubeErrorMessage(error) }, "could not report to a ProfileRecording");
      // Gone: the recording was deleted (its results are never written).
      if (isKubeError(error, 404)) this.ledger.forget(recording);
      // A conflict, the API server away or down: again after the interval. A refusal (4xx) would only repeat.
      else if (!this.stopped && !isClientError(error)) this.burst.add(recording);
    }
  }
}

const isClientError = (error: unknown) => {
  const code = kubeErrorCode(error);
  return code !== undefined && code >= 400 && code < 500 && code !== 409 && code !== 429;
};
