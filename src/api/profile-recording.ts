// ProfileRecording: record a seccomp profile from workloads running in the cluster
// (docs/adr/0039-profile-recording.md). A namespaced object selects pods of its own namespace by labels;
// while it records, the webhook runs new matching pods under a recorder profile that logs every call
// (SCMP_ACT_LOG), each node's agent writes what its pods called into the object's status (its own entry,
// server-side apply), and when the recording ends the controller merges the entries into SeccompProfiles.
// This module holds the names, the one zod schema, and the pure rules every part shares: the recorder
// profile's name, when a recording is active, what its pods are, and the merge. The CRD
// (src/manifests/recording-crd.ts) is built from the same constants.
import { createHash } from "node:crypto";
import * as z from "zod";
import { ConditionSchema } from "./common.ts";
import { API_VERSION, GROUP, RECORDING_ANNOTATION, SECCOMP_PROFILE_KIND, VERSION } from "./constants.ts";
import { RECORDING_LIMITS } from "./limits.ts";
import { DNS_SUBDOMAIN } from "./patterns.ts";
import { type PodSelector, PodSelectorSchema } from "./profile-binding.ts";
import { profileFromSyscalls } from "./recorded-seccomp.ts";
import { MAX_SECCOMP_PROFILE_NAME, type SeccompProfile } from "./seccomp.ts";

export const PROFILE_RECORDING_KIND = "ProfileRecording";
export const PROFILE_RECORDING_PLURAL = "profilerecordings";

/** The API path of every ProfileRecording (all namespaces), of a namespace's, or of one. */
export function profileRecordingPath(namespace?: string, name?: string): string {
  const base = `/apis/${GROUP}/${VERSION}`;
  if (namespace === undefined) return `${base}/${PROFILE_RECORDING_PLURAL}`;
  const collection = `${base}/namespaces/${encodeURIComponent(namespace)}/${PROFILE_RECORDING_PLURAL}`;
  return name === undefined ? collection : `${collection}/${encodeURIComponent(name)}`;
}

/**
 * The namespace label a cluster admin sets where recordings may run: only there does every pod creation
 * reach the webhook's recording route, and the policy lockstep-profile-recordings refuses a
 * ProfileRecording anywhere else (it would record nothing).
 */
export const RECORDING_NAMESPACE_LABEL = `${GROUP}/recording`;
export const RECORDING_NAMESPACE_ENABLED = "enabled";
/** The webhook's route for pods of such a namespace. */
export const RECORDING_WEBHOOK_PATH = "/record";

/** Held by the controller on every ProfileRecording: its recorder profile goes before the object does. */
export const RECORDING_FINALIZER = `${GROUP}/recording-cleanup`;

/** Provenance of a recorded profile: where it came from, which pods and nodes, when. */
export const RECORDED_FROM_ANNOTATION = `${GROUP}/recorded-from`;
export const RECORDED_UID_ANNOTATION = `${GROUP}/recorded-from-uid`;
export const RECORDED_PODS_ANNOTATION = `${GROUP}/recorded-pods`;
export const RECORDED_NODES_ANNOTATION = `${GROUP}/recorded-nodes`;
export const RECORDED_AT_ANNOTATION = `${GROUP}/recorded-at`;

/** What a recording records. AppArmor and capabilities are later (ADR 0039 says why). */
export const RECORDING_KINDS = ["seccomp"] as const;
export const MERGE_STRATEGIES = ["container", "workload"] as const;
export type MergeStrategy = (typeof MERGE_STRATEGIES)[number];

/** A duration as Go and kubectl write it, in whole hours, minutes and seconds: `90s`, `10m`, `1h30m`. */
export const DURATION_PATTERN = "^([0-9]{1,6}h)?([0-9]{1,6}m)?([0-9]{1,6}s)?$";
const DURATION = new RegExp(DURATION_PATTERN);

/** The duration in seconds, or undefined when it is not one (or is empty). */
export function durationSeconds(text: string): number | undefined {
  const m = DURATION.exec(text);
  if (!m || text === "") return undefined;
  const [, h = "0h", min = "0m", s = "0s"] = m;
  return Number.parseInt(h, 10) * 3600 + Number.parseInt(min, 10) * 60 + Number.parseInt(s, 10);
}

export const ProfileRecordingSpecSchema = z
  .object({
    /** Pods of the recording's namespace whose labels match; `{}` selects every pod there. */
    podSelector: PodSelectorSchema,
    kinds: z.array(z.enum(RECORDING_KINDS)).min(1).max(RECORDING_KINDS.length).optional(),
    /** container: one profile per container name; workload: one profile for every container. */
    mergeStrategy: z.enum(MERGE_STRATEGIES).optional(),
    /** How long to record, from the moment recording started; absent: until `stop` or deletion. */
    duration: z
      .string()
      .refine(
        (d) => {
          const s = durationSeconds(d);
          return s !== undefined && s > 0 && s <= RECORDING_LIMITS.maxDurationSeconds;
        },
        `must be a duration such as 90s, 10m or 1h30m, more than 0 and at most ${RECORDING_LIMITS.maxDurationSeconds / 3600}h`,
      )
      .optional(),
    /** true ends the recording now and writes its profiles. */
    stop: z.boolean().optional(),
    /** true: matching pods that started before the recording, and have an owner to recreate them, are deleted once. */
    restartPods: z.boolean().optional(),
  })
  .strict();
export type ProfileRecordingSpec = z.infer<typeof ProfileRecordingSpecSchema>;

export const RECORDING_PHASES = ["Pending", "Recording", "Stopping", "Completed", "Failed"] as const;
export type RecordingPhase = (typeof RECORDING_PHASES)[number];

/** One container's calls as one node's agent saw them. */
export const RecordedContainerSchema = z.object({
  pod: z.string(),
  podUID: z.string(),
  container: z.string(),
  /** Syscall names, sorted, without duplicates. */
  syscalls: z.array(z.string()).max(RECORDING_LIMITS.syscallsPerContainer),
  /** Audit records behind them (a record may repeat a call already in the set). */
  events: z.number().int().nonnegative(),
});
export type RecordedContainer = z.infer<typeof RecordedContainerSchema>;

/** One node's entry, written by that node's agent alone (server-side apply, field manager per node). */
export const RecordingNodeEntrySchema = z.object({
  node: z.string(),
  updatedAt: z.string(),
  containers: z.array(RecordedContainerSchema).max(RECORDING_LIMITS.containersPerNode).optional(),
  /** The entry hit one of RECORDING_LIMITS, or the node's collector dropped calls (AUDIT_LIMITS): the result may miss calls. */
  truncated: z.boolean().optional(),
});
export type RecordingNodeEntry = z.infer<typeof RecordingNodeEntrySchema>;

export const ProfileRecordingStatusSchema = z.object({
  phase: z.enum(RECORDING_PHASES).optional(),
  /** When the recorder profile existed and new pods began to be recorded. */
  startedAt: z.string().optional(),
  /** When the recording was told to end (stop, duration); results are merged a moment later. */
  stoppedAt: z.string().optional(),
  completedAt: z.string().optional(),
  /** The recorder profile pods run under while recording. */
  recorderProfile: z.string().optional(),
  podsRecorded: z.number().int().nonnegative().optional(),
  nodesReporting: z.number().int().nonnegative().optional(),
  eventsSeen: z.number().int().nonnegative().optional(),
  /** Distinct syscalls recorded so far, over every container. */
  syscalls: z.number().int().nonnegative().optional(),
  /** Pods deleted for restartPods (once, when recording started). */
  podsRestarted: z.number().int().nonnegative().optional(),
  /** The SeccompProfiles written when the recording completed. */
  profiles: z.array(z.string()).optional(),
  conditions: z.array(ConditionSchema).optional(),
  nodes: z.array(RecordingNodeEntrySchema).max(RECORDING_LIMITS.nodes).optional(),
});
export type ProfileRecordingStatus = z.infer<typeof ProfileRecordingStatusSchema>;

export const ProfileRecordingSchema = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal(PROFILE_RECORDING_KIND),
  metadata: z.looseObject({
    name: z.string().min(1),
    namespace: z.string().min(1),
    uid: z.string().optional(),
    resourceVersion: z.string().optional(),
    creationTimestamp: z.string().optional(),
    deletionTimestamp: z.string().optional(),
    finalizers: z.array(z.string()).optional(),
  }),
  spec: ProfileRecordingSpecSchema,
  status: ProfileRecordingStatusSchema.optional(),
});
export type ProfileRecording = z.infer<typeof ProfileRecordingSchema>;

// --- names ------------------------------------------------------------------------------------------

const HASH_LENGTH = 10;
const hashOf = (text: string) =>
  createHash("sha256").update(text, "utf8").digest("hex").slice(0, HASH_LENGTH);

/**
 * `name` when it is a valid SeccompProfile name of at most MAX_SECCOMP_PROFILE_NAME characters and
 * `exact`; otherwise a stem of it plus `-` and a hash of `identity`, so two inputs never share a name
 * short of a hash collision (which the controller detects by the profile's annotation, not by its name).
 */
function profileNameFor(name: string, identity: string, exact: boolean): string {
  if (exact && name.length <= MAX_SECCOMP_PROFILE_NAME && DNS_SUBDOMAIN.test(name)) return name;
  const stem = name
    .slice(0, MAX_SECCOMP_PROFILE_NAME - HASH_LENGTH - 1)
    .replace(/[^-a-z0-9.]/g, "-")
    .replace(/[-.]+$/, "");
  return `${stem}-${hashOf(identity)}`;
}

/**
 * The recorder profile of a recording: `rec-<namespace>-<recording>`. Namespace names may hold `-`, so
 * `rec-a-b-c` could be a-b/c or a/b-c: only a namespace without `-` gives the plain name; any other, or a
 * name too long, gets a hash of `<namespace>/<recording>` at its end.
 */
export function recorderProfileName(namespace: string, recording: string): string {
  return profileNameFor(
    `rec-${namespace}-${recording}`,
    `${namespace}/${recording}`,
    !namespace.includes("-"),
  );
}

/** The value of RECORDING_ANNOTATION on a recorder profile. */
export const recordingRef = (namespace: string, name: string) => `${namespace}/${name}`;

/**
 * The SeccompProfile a recording writes for one container name (container strategy):
 * `<recording>-<container>`, or for the whole workload `<recording>`; shortened with a hash when too long.
 */
export function recordedProfileName(recording: string, container?: string): string {
  if (container === undefined) return profileNameFor(recording, recording, true);
  return profileNameFor(`${recording}-${container}`, `${recording}/${container}`, true);
}

/** The recorder profile: logs every call, allows it, and names its recording. */
export function recorderProfile(namespace: string, recording: string): SeccompProfile {
  return {
    apiVersion: API_VERSION,
    kind: SECCOMP_PROFILE_KIND,
    metadata: {
      name: recorderProfileName(namespace, recording),
      annotations: { [RECORDING_ANNOTATION]: recordingRef(namespace, recording) },
    },
    spec: { defaultAction: "SCMP_ACT_LOG" },
  };
}

// --- when a recording records -------------------------------------------------------------------------

/** Whether the webhook should put new matching pods under the recorder profile now. */
export function isRecording(rec: Pick<ProfileRecording, "metadata" | "spec" | "status">): boolean {
  return (
    rec.status?.phase === "Recording" &&
    rec.spec.stop !== true &&
    rec.metadata.deletionTimestamp === undefined
  );
}

/**
 * When a Recording should stop by itself, in ms since the epoch: startedAt + duration; undefined without
 * a duration (or before it started).
 */
export function recordingDeadline(rec: Pick<ProfileRecording, "spec" | "status">): number | undefined {
  const seconds = rec.spec.duration === undefined ? undefined : durationSeconds(rec.spec.duration);
  const started = rec.status?.startedAt === undefined ? Number.NaN : Date.parse(rec.status.startedAt);
  if (seconds === undefined || Number.isNaN(started)) return undefined;
  return started + seconds * 1000;
}

/** What the controller does with a recording now (recording-decision.ts carries it out). */
export type RecordingStep =
  /** Deleted: remove the recorder profile, then let the object go; no results. */
  | { step: "cleanup" }
  /** Create (or adopt) the recorder profile and enter Recording. */
  | { step: "start" }
  /** Keep recording; look again at `recheckAt` (the deadline), if any. */
  | { step: "record"; recheckAt?: number; restartPods: boolean }
  /** stop or the deadline: delete the recorder profile and wait for the agents' last entries. */
  | { step: "stop"; why: "StopRequested" | "DurationElapsed" }
  /** Stopping: merge once the agents had `settleMs` to send what they still held; `recheckAt` before. */
  | { step: "settle"; recheckAt: number }
  | { step: "merge" }
  /** Completed or Failed: only make sure the recorder profile is gone. */
  | { step: "done" };

/**
 * The step for a recording at `now`. `settleMs`: how long after the recorder profile's deletion the
 * controller waits for the agents' last reports (longer than their debounce).
 */
export function recordingStep(
  rec: Pick<ProfileRecording, "metadata" | "spec" | "status">,
  now: number,
  settleMs: number,
): RecordingStep {
  if (rec.metadata.deletionTimestamp !== undefined) return { step: "cleanup" };
  const phase = rec.status?.phase ?? "Pending";
  switch (phase) {
    case "Pending":
      return { step: "start" };
    case "Recording": {
      if (rec.spec.stop === true) return { step: "stop", why: "StopRequested" };
      const deadline = recordingDeadline(rec);
      if (deadline !== undefined && now >= deadline) return { step: "stop", why: "DurationElapsed" };
      return {
        step: "record",
        ...(deadline === undefined ? {} : { recheckAt: deadline }),
        restartPods: rec.spec.restartPods === true && rec.status?.podsRestarted === undefined,
      };
    }
    case "Stopping": {
      const stopped = rec.status?.stoppedAt === undefined ? now : Date.parse(rec.status.stoppedAt);
      const settled = (Number.isNaN(stopped) ? now : stopped) + settleMs;
      return now >= settled ? { step: "merge" } : { step: "settle", recheckAt: settled };
    }
    default:
      return { step: "done" };
  }
}

// --- pods ----------------------------------------------------------------------------------------------

/** What the controller reads of a pod to decide whether restartPods deletes it. */
export interface PodFacts {
  name: string;
  labels: Readonly<Record<string, string>>;
  annotations: Readonly<Record<string, string>>;
  creationTimestamp?: string;
  /** Whether a controller (ReplicaSet, StatefulSet, Job, ...) owns it and will recreate it. */
  hasController: boolean;
  deleting: boolean;
}

/**
 * restartPods: the pods to delete (selected, created before the recording started, not yet recorded,
 * owned by a controller that recreates them) and those left alone because nothing would recreate them.
 * `selected` is the selector's verdict (binding-match.ts's selectorMatches).
 */
export function podsToRestart(
  recording: string,
  startedAt: number,
  pods: readonly PodFacts[],
  selected: (labels: Readonly<Record<string, string>>) => boolean,
): { restart: string[]; unowned: string[] } {
  const restart: string[] = [];
  const unowned: string[] = [];
  for (const pod of pods) {
    if (pod.deleting || pod.annotations[RECORDING_ANNOTATION] === recording || !selected(pod.labels))
      continue;
    const created = pod.creationTimestamp === undefined ? Number.NaN : Date.parse(pod.creationTimestamp);
    if (!(created < startedAt)) continue;
    (pod.hasController ? restart : unowned).push(pod.name);
  }
  return { restart: restart.sort(), unowned: unowned.sort() };
}

// --- the merge -------------------------------------------------------------------------------------------

/** The summary fields of status, from the node entries. */
export interface RecordingSummary {
  podsRecorded: number;
  nodesReporting: number;
  eventsSeen: number;
  syscalls: number;
  truncatedNodes: string[];
}

/** Counts over the entries as they stand (the controller keeps them current while recording). */
export function summarizeRecording(nodes: readonly RecordingNodeEntry[]): RecordingSummary {
  const pods = new Set<string>();
  const syscalls = new Set<string>();
  let events = 0;
  for (const entry of nodes)
    for (const c of entry.containers ?? []) {
      pods.add(c.podUID);
      events += c.events;
      for (const s of c.syscalls) syscalls.add(s);
    }
  return {
    podsRecorded: pods.size,
    nodesReporting: nodes.filter((n) => (n.containers ?? []).length > 0).length,
    eventsSeen: events,
    syscalls: syscalls.size,
    truncatedNodes: nodes
      .filter((n) => n.truncated === true)
      .map((n) => n.node)
      .sort(),
  };
}

const listed = (items: readonly string[], limit: number) =>
  items.length <= limit
    ? items.join(",")
    : `${items.slice(0, limit).join(",")},... (${items.length - limit} more)`;

export interface MergedRecording {
  profiles: SeccompProfile[];
  summary: RecordingSummary;
}

/**
 * The profiles a recording writes: per container name (container strategy) or one for every container
 * (workload), each allowing exactly the calls recorded in any replica on any node plus what the runtime
 * itself calls under the filter (ADR 0040), everything else refused with EPERM. Names sorted and without
 * duplicates; provenance in annotations. No container recorded: no profile.
 */
export function mergeRecording(
  rec: Pick<ProfileRecording, "metadata" | "spec">,
  nodes: readonly RecordingNodeEntry[],
  now: Date,
): MergedRecording {
  const { name, namespace } = rec.metadata;
  const strategy = rec.spec.mergeStrategy ?? "container";
  const groups = new Map<
    string | undefined,
    { syscalls: Set<string>; pods: Set<string>; nodes: Set<string> }
  >();
  for (const entry of nodes)
    for (const c of entry.containers ?? []) {
      const key = strategy === "container" ? c.container : undefined;
      let group = groups.get(key);
      if (!group) {
        group = { syscalls: new Set(), pods: new Set(), nodes: new Set() };
        groups.set(key, group);
      }
      for (const s of c.syscalls) group.syscalls.add(s);
      group.pods.add(c.pod);
      group.nodes.add(entry.node);
    }
  const profiles = [...groups.entries()]
    .map(([container, group]): SeccompProfile => {
      const { seccomp } = profileFromSyscalls(group.syscalls);
      return {
        apiVersion: API_VERSION,
        kind: SECCOMP_PROFILE_KIND,
        metadata: {
          name: recordedProfileName(name, container),
          annotations: {
            [RECORDED_FROM_ANNOTATION]: recordingRef(namespace, name),
            ...(rec.metadata.uid ? { [RECORDED_UID_ANNOTATION]: rec.metadata.uid } : {}),
            [RECORDED_PODS_ANNOTATION]: listed([...group.pods].sort(), RECORDING_LIMITS.provenancePods),
            [RECORDED_NODES_ANNOTATION]: listed([...group.nodes].sort(), RECORDING_LIMITS.nodes),
            [RECORDED_AT_ANNOTATION]: now.toISOString(),
          },
        },
        spec: {
          defaultAction: seccomp.defaultAction,
          ...(seccomp.defaultErrnoRet === undefined ? {} : { defaultErrnoRet: seccomp.defaultErrnoRet }),
          syscalls: seccomp.syscalls,
        },
      };
    })
    .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  return { profiles, summary: summarizeRecording(nodes) };
}

/**
 * The pod selector as a label selector query (`app=web,tier in (a,b),!debug`), so the API server lists
 * only the selected pods. The grammar is k8s.io/apimachinery's labels.Parse; the schema's label keys and
 * values never hold its separators.
 */
export function labelSelectorQuery(selector: PodSelector): string {
  const requirements = Object.entries(selector.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of selector.matchExpressions ?? [])
    requirements.push(
      e.operator === "Exists"
        ? e.key
        : e.operator === "DoesNotExist"
          ? `!${e.key}`
          : `${e.key} ${e.operator === "In" ? "in" : "notin"} (${(e.values ?? []).join(",")})`,
    );
  return requirements.join(",");
}

/**
 * `<namespace>/<name>` of every recording whose recorder profile is live (RECORDING_ANNOTATION, not being
 * deleted): what the agent reports for. A recorder profile being deleted means the recording stopped.
 */
export function liveRecordings(
  profiles: Iterable<{ metadata?: { annotations?: Record<string, string>; deletionTimestamp?: unknown } }>,
): Set<string> {
  const live = new Set<string>();
  for (const p of profiles) {
    const ref = p.metadata?.annotations?.[RECORDING_ANNOTATION];
    if (ref !== undefined && p.metadata?.deletionTimestamp == null) live.add(ref);
  }
  return live;
}
