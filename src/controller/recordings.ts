// The recording controller (docs/adr/0039-profile-recording.md): a level-triggered reconcile of each
// ProfileRecording, read from a watch cache, under the recording-cleanup finalizer (src/kube/finalizer.ts).
// Wiring only: recordingStep (src/api/profile-recording.ts) says what to do now, recording-status.ts
// what status says about it, mergeRecording what the results are. Each step is one or a few API calls:
// - start: create the recorder profile (or adopt it when it is this recording's), then phase Recording;
// - record: keep the summary current from the agents' entries; restartPods once; wake at the deadline;
// - stop (spec.stop, duration): delete the recorder profile, phase Stopping; the agents see it go and
//   send what they still hold;
// - merge (settleMs later): create the result SeccompProfiles, phase Completed;
// - cleanup (the object is deleted): delete the recorder profile, write nothing.
// The recorder profile is deleted only when its annotation names this recording, with its uid as a
// precondition; the in-use protection of every profile keeps it on the nodes while recorded pods run.
import type { V1ObjectMeta } from "@kubernetes/client-node";
import { MatchBudget, selectorMatches } from "../api/binding-match.ts";
import { profilePath, RECORDING_ANNOTATION } from "../api/constants.ts";
import {
  labelSelectorQuery,
  mergeRecording,
  type PodFacts,
  type ProfileRecording,
  ProfileRecordingSchema,
  type ProfileRecordingStatus,
  podsToRestart,
  profileRecordingPath,
  RECORDED_UID_ANNOTATION,
  RECORDING_FINALIZER,
  recorderProfile,
  recorderProfileName,
  recordingRef,
  recordingStep,
} from "../api/profile-recording.ts";
import type { SeccompProfile } from "../api/seccomp.ts";
import { type KubeClient, METADATA_ONLY_ACCEPT } from "../kube/client.ts";
import { isKubeError, kubeErrorMessage } from "../kube/errors.ts";
import { type Finalizer, reconcileWithFinalizer } from "../kube/finalizer.ts";
import { Informer, type KubeObject } from "../kube/informer.ts";
import type { Logger } from "../kube/logger.ts";
import { OwnWrites } from "../kube/own-writes.ts";
import { logWatchFailures } from "../kube/profile-cache.ts";
import { type HandlerResult, WorkQueue } from "../kube/workqueue.ts";
import {
  completedPatch,
  failedPatch,
  type ProfileRefusal,
  pendingPatch,
  restartedPatch,
  sameConditions,
  startedPatch,
  stoppingPatch,
  summaryPatch,
} from "./recording-status.ts";

/**
 * How long after the recorder profile's deletion the results are merged: the agents report at most every
 * REPORT_INTERVAL_MS (node-agent/recording-reporter.ts, 2 s) and at once when a recorder profile goes;
 * this leaves them that and an apply's round trip twice over.
 */
export const DEFAULT_SETTLE_MS = 6_000;
/**
 * restartPods waits this long after the recording started: the webhook's cache must have seen the phase
 * Recording before the owners recreate the pods, or the replacements start unrecorded.
 */
export const DEFAULT_RESTART_DELAY_MS = 3_000;

/** How often a recording waiting for an earlier recorder of its name to go looks again. */
const RECORDER_RECHECK_MS = 5_000;
const RECORDER_TERMINATING = Symbol("recorder terminating");

type RecordingObject = KubeObject & { spec?: unknown; status?: ProfileRecordingStatus };
type ProfileObject = KubeObject & { metadata?: V1ObjectMeta };

export interface RecordingControllerOptions {
  client: KubeClient;
  log: Logger;
  settleMs?: number;
  restartDelayMs?: number;
}

export class RecordingController {
  private readonly client: KubeClient;
  private readonly log: Logger;
  private readonly settleMs: number;
  private readonly restartDelayMs: number;
  private readonly recordings: Informer<RecordingObject>;
  private readonly queue = new WorkQueue({ workers: 2 });
  /** Each recording as this replica's last write left it, until the watch delivers that write. */
  private readonly own = new OwnWrites<RecordingObject | undefined>();
  private readonly finalizer: Finalizer<ProfileRecording>;
  private stopped = false;
  private synced = false;

  constructor(opts: RecordingControllerOptions) {
    this.client = opts.client;
    this.log = opts.log;
    this.settleMs = opts.settleMs ?? DEFAULT_SETTLE_MS;
    this.restartDelayMs = opts.restartDelayMs ?? DEFAULT_RESTART_DELAY_MS;
    this.recordings = new Informer<RecordingObject>(this.client, {
      path: profileRecordingPath(),
      onError: logWatchFailures(opts.log, "profile recordings", () => this.stopped),
      maxObjectBytes: 1536 * 1024,
    });
    this.finalizer = {
      name: RECORDING_FINALIZER,
      patch: (rec, finalizers) =>
        this.write(rec, profileRecordingPath(rec.metadata.namespace, rec.metadata.name), {
          metadata: { finalizers, resourceVersion: rec.metadata.resourceVersion },
        }),
    };
  }

  notReadyReason(): string | undefined {
    return this.synced ? undefined : "profile recordings cache not synced";
  }

  async start(): Promise<void> {
    const wake = (o: RecordingObject) => this.queue.add(keyOf(o.metadata?.namespace, o.metadata?.name));
    this.recordings.on("add", wake);
    this.recordings.on("update", wake);
    this.recordings.on("delete", (o) => this.own.forget(keyOf(o.metadata?.namespace, o.metadata?.name)));
    await this.recordings.start();
    this.synced = true;
    this.queue.run(
      (key) => this.reconcile(key),
      (key, error, retryInMs) =>
        this.log.error(
          { kind: "ProfileRecording", name: key, err: kubeErrorMessage(error), retryInMs },
          "reconcile failed; retrying",
        ),
    );
    for (const o of this.recordings.list()) wake(o);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.queue.shutDown();
    await this.recordings.stop();
  }

  private async reconcile(key: string): Promise<HandlerResult> {
    const [namespace = "", name = ""] = key.split("/");
    const cached = this.recordings.get(name, namespace);
    if (!cached) return undefined;
    const current = this.own.current(key, cached.metadata?.resourceVersion, cached) ?? cached;
    const parsed = ProfileRecordingSchema.safeParse(current);
    if (!parsed.success) {
      // The CRD refuses what the schema does (recording-crd.ts): this is a bug to see in the log.
      this.log.error({ kind: "ProfileRecording", name: key, err: parsed.error.message }, "does not parse");
      return undefined;
    }
    return reconcileWithFinalizer(this.finalizer, parsed.data, {
      apply: (rec) => this.apply(rec),
      cleanup: async (rec) => {
        await this.deleteRecorder(rec);
        this.log.info(
          { kind: "ProfileRecording", name: key },
          "deleted: recorder profile removed, no results",
        );
        return { done: true };
      },
    });
  }

  private async apply(
    rec: ProfileRecording,
  ): Promise<{ result: HandlerResult; current: ProfileRecording | undefined }> {
    const now = new Date();
    const step = recordingStep(rec, now.getTime(), this.settleMs);
    const log = this.log.child({
      kind: "ProfileRecording",
      name: `${rec.metadata.namespace}/${rec.metadata.name}`,
    });
    const status = rec.status;
    const nodes = status?.nodes ?? [];
    const after = (result: HandlerResult, written?: ProfileRecording) => ({
      result,
      current: written ?? rec,
    });
    switch (step.step) {
      case "start": {
        // The finalizer first: a recorder profile must never exist for a recording that can go without it.
        if (!(rec.metadata.finalizers ?? []).includes(RECORDING_FINALIZER)) return after(undefined);
        const recorder = recorderProfile(rec.metadata.namespace, rec.metadata.name);
        const taken = await this.ensureRecorder(recorder);
        if (taken === RECORDER_TERMINATING) {
          // An earlier recording of this name ended and its recorder is kept while its pods run (in-use
          // protection): this one starts once that is gone.
          const waiting = pendingPatch(
            status,
            "RecorderTerminating",
            `SeccompProfile ${recorder.metadata.name} of an earlier recording of this name is being deleted, kept while pods still run under it: recording starts once it is gone (delete those pods to start now)`,
            now,
          );
          return after(
            { requeueAfterMs: RECORDER_RECHECK_MS },
            await this.patchStatusIf(rec, sameConditions(status, waiting) ? undefined : waiting),
          );
        }
        if (taken) {
          log.warn({ profile: recorder.metadata.name, takenBy: taken }, "recorder profile name taken");
          return after(
            undefined,
            await this.patchStatus(
              rec,
              failedPatch(
                status,
                "RecorderNameTaken",
                `SeccompProfile ${recorder.metadata.name} exists and is not this recording's (${taken}): delete it or rename the recording`,
                now,
              ),
            ),
          );
        }
        log.info({ profile: recorder.metadata.name }, "recording");
        return after(
          undefined,
          await this.patchStatus(rec, startedPatch(status, recorder.metadata.name, now)),
        );
      }
      case "record": {
        let written = await this.patchStatusIf(rec, summaryPatch(status, nodes, now));
        if (step.restartPods) {
          const startedAt = Date.parse(status?.startedAt ?? "");
          const wait = startedAt + this.restartDelayMs - now.getTime();
          if (wait > 0) return after({ requeueAfterMs: wait }, written);
          const { restart, unowned } = await this.restartPods(written ?? rec, startedAt);
          log.info({ restarted: restart.length, unowned: unowned.length }, "restarted pods to record them");
          written = await this.patchStatus(
            written ?? rec,
            restartedPatch((written ?? rec).status, restart, unowned, now),
          );
        }
        return after(
          step.recheckAt === undefined
            ? undefined
            : { requeueAfterMs: Math.max(0, step.recheckAt - now.getTime()) },
          written,
        );
      }
      case "stop": {
        await this.deleteRecorder(rec);
        log.info({ why: step.why }, "stopping: recorder profile removed, awaiting the nodes' last reports");
        return after(
          { requeueAfterMs: this.settleMs },
          await this.patchStatus(rec, stoppingPatch(status, step.why, now)),
        );
      }
      case "settle":
        return after(
          { requeueAfterMs: Math.max(0, step.recheckAt - now.getTime()) },
          await this.patchStatusIf(rec, summaryPatch(status, nodes, now)),
        );
      case "merge": {
        const merged = mergeRecording(rec, nodes, now);
        const written: string[] = [];
        const refused: ProfileRefusal[] = [];
        for (const profile of merged.profiles) {
          const refusal = await this.createResult(rec, profile);
          if (refusal) refused.push({ profile: profile.metadata.name, message: refusal });
          else written.push(profile.metadata.name);
        }
        log.info({ profiles: written, refused: refused.length, ...merged.summary }, "recording completed");
        return after(
          undefined,
          await this.patchStatus(rec, completedPatch(status, nodes, written, refused, now)),
        );
      }
      case "cleanup":
      case "done":
        return after(undefined);
    }
  }

  /**
   * Creates the recorder profile; undefined when it is (now) there as this recording's, RECORDER_TERMINATING
   * while an earlier one of that name is still being deleted, else whose it is.
   */
  private async ensureRecorder(
    profile: SeccompProfile,
  ): Promise<string | typeof RECORDER_TERMINATING | undefined> {
    const path = profilePath("seccomp");
    try {
      await this.client.create(path, profile);
      return undefined;
    } catch (error) {
      if (!isKubeError(error, 409)) throw error;
    }
    const existing = await this.client.get<ProfileObject>(profilePath("seccomp", profile.metadata.name));
    const owner = existing.metadata?.annotations?.[RECORDING_ANNOTATION];
    if (existing.metadata?.deletionTimestamp) return RECORDER_TERMINATING;
    return owner === profile.metadata.annotations?.[RECORDING_ANNOTATION]
      ? undefined
      : (owner ?? "no recording");
  }

  /** Deletes the recorder profile if it is this recording's (by its annotation, with its uid as precondition). */
  private async deleteRecorder(rec: ProfileRecording): Promise<void> {
    const path = profilePath("seccomp", recorderProfileName(rec.metadata.namespace, rec.metadata.name));
    let existing: ProfileObject;
    try {
      existing = await this.client.get<ProfileObject>(path);
    } catch (error) {
      if (isKubeError(error, 404)) return;
      throw error;
    }
    const ref = recordingRef(rec.metadata.namespace, rec.metadata.name);
    if (existing.metadata?.annotations?.[RECORDING_ANNOTATION] !== ref || existing.metadata.deletionTimestamp)
      return;
    try {
      await this.client.delete(path, {
        body: { apiVersion: "v1", kind: "DeleteOptions", preconditions: { uid: existing.metadata.uid } },
      });
    } catch (error) {
      if (!isKubeError(error, 404) && !isKubeError(error, 409)) throw error;
    }
  }

  /** Creates a result profile; a refusal's message when a profile of that name exists and is not ours. */
  private async createResult(rec: ProfileRecording, profile: SeccompProfile): Promise<string | undefined> {
    try {
      await this.client.create(profilePath("seccomp"), profile);
      return undefined;
    } catch (error) {
      if (!isKubeError(error, 409)) throw error;
    }
    const existing = await this.client.get<ProfileObject>(profilePath("seccomp", profile.metadata.name));
    // Written by an earlier try of this very recording (the status write after it failed): done.
    if (
      rec.metadata.uid !== undefined &&
      existing.metadata?.annotations?.[RECORDED_UID_ANNOTATION] === rec.metadata.uid
    )
      return undefined;
    return "a SeccompProfile of this name exists already and was not written by this recording: delete or rename it, then record again";
  }

  /** restartPods: deletes the selected pods that started before the recording and that an owner recreates. */
  private async restartPods(rec: ProfileRecording, startedAt: number) {
    const list = await this.client.get<{ items?: { metadata?: V1ObjectMeta }[] }>(
      `/api/v1/namespaces/${encodeURIComponent(rec.metadata.namespace)}/pods`,
      {
        query: { labelSelector: labelSelectorQuery(rec.spec.podSelector) },
        accept: METADATA_ONLY_ACCEPT.list,
      },
    );
    const pods: PodFacts[] = (list.items ?? []).map(({ metadata: m }) => ({
      name: m?.name ?? "",
      labels: m?.labels ?? {},
      annotations: m?.annotations ?? {},
      creationTimestamp:
        m?.creationTimestamp === undefined ? undefined : new Date(m.creationTimestamp).toISOString(),
      hasController: (m?.ownerReferences ?? []).some((o) => o.controller === true),
      deleting: m?.deletionTimestamp !== undefined,
    }));
    const chosen = podsToRestart(rec.metadata.name, startedAt, pods, (labels) =>
      selectorMatches(rec.spec.podSelector, labels, new MatchBudget()),
    );
    for (const pod of chosen.restart)
      try {
        await this.client.delete(
          `/api/v1/namespaces/${encodeURIComponent(rec.metadata.namespace)}/pods/${encodeURIComponent(pod)}`,
        );
      } catch (error) {
        if (!isKubeError(error, 404)) throw error;
      }
    return chosen;
  }

  private patchStatusIf(rec: ProfileRecording, patch: ProfileRecordingStatus | undefined) {
    return patch === undefined ? Promise.resolve(undefined) : this.patchStatus(rec, patch);
  }

  private patchStatus(rec: ProfileRecording, status: ProfileRecordingStatus) {
    return this.write(rec, `${profileRecordingPath(rec.metadata.namespace, rec.metadata.name)}/status`, {
      status,
    });
  }

  /** One merge patch: the recording as it left it (kept as an own write), undefined when it is gone. */
  private async write(
    rec: ProfileRecording,
    path: string,
    body: object,
  ): Promise<ProfileRecording | undefined> {
    try {
      const after = await this.client.patch<RecordingObject>(path, "merge", body);
      this.own.wrote(
        keyOf(rec.metadata.namespace, rec.metadata.name),
        after.metadata?.resourceVersion,
        after,
      );
      const parsed = ProfileRecordingSchema.safeParse(after);
      return parsed.success ? parsed.data : undefined;
    } catch (error) {
      if (isKubeError(error, 404)) return undefined;
      throw error;
    }
  }
}

const keyOf = (namespace: string | undefined, name: string | undefined) => `${namespace ?? ""}/${name ?? ""}`;
