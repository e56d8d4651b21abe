// The ProfileRecording CRD, from the constants and limits ProfileRecordingSchema (profile-recording.ts)
// uses, so the API server refuses what the controller's schema would: `make manifests` writes it,
// test/unit/crds.test.ts fails when it is stale, and test/integration/profile-recordings.test.ts holds the
// two together on the real API server (docs/adr/0039-profile-recording.md).
import { RECORDING_LIMITS } from "../api/limits.ts";
import {
  DURATION_PATTERN,
  MERGE_STRATEGIES,
  PROFILE_RECORDING_KIND,
  PROFILE_RECORDING_PLURAL,
  RECORDING_KINDS,
  RECORDING_PHASES,
} from "../api/profile-recording.ts";
import { podSelector } from "./binding-crd.ts";
import { lockstepCrd, STATUS_SCHEMA } from "./crd.ts";

type Schema = Record<string, unknown>;

const spec: Schema = {
  type: "object",
  required: ["podSelector"],
  properties: {
    podSelector: {
      ...podSelector,
      description:
        "Pods of this namespace to record (metav1.LabelSelector); {} selects every pod. Only pods created while the recording runs are recorded, unless restartPods.",
    },
    kinds: {
      type: "array",
      minItems: 1,
      maxItems: RECORDING_KINDS.length,
      "x-kubernetes-list-type": "set",
      items: { type: "string", enum: [...RECORDING_KINDS] },
      description: "What to record: seccomp (the default). AppArmor and capabilities are not recorded yet.",
    },
    mergeStrategy: {
      type: "string",
      enum: [...MERGE_STRATEGIES],
      description:
        "container (default): one SeccompProfile <recording>-<container> per container name, merged over every replica and node; workload: one SeccompProfile <recording> for every container.",
    },
    duration: {
      type: "string",
      pattern: DURATION_PATTERN,
      minLength: 2,
      maxLength: 24,
      description: `How long to record from the start, e.g. 10m or 1h30m (at most ${RECORDING_LIMITS.maxDurationSeconds / 3600}h); absent: until stop is set.`,
    },
    stop: {
      type: "boolean",
      description:
        "true ends the recording and writes its profiles. Deleting the recording instead ends it without writing any.",
    },
    restartPods: {
      type: "boolean",
      description:
        "true: matching pods created before the recording started, and owned by a controller that recreates them, are deleted once so that their replacements are recorded.",
    },
  },
  "x-kubernetes-validations": [
    {
      rule: "!has(oldSelf.stop) || !oldSelf.stop || (has(self.stop) && self.stop)",
      message: "a stopped recording cannot be resumed: create a new ProfileRecording",
    },
  ],
};

const container: Schema = {
  type: "object",
  required: ["pod", "podUID", "container", "syscalls", "events"],
  properties: {
    pod: { type: "string", maxLength: 253 },
    podUID: { type: "string", maxLength: 36 },
    container: { type: "string", maxLength: 63 },
    syscalls: {
      type: "array",
      maxItems: RECORDING_LIMITS.syscallsPerContainer,
      items: { type: "string", maxLength: 64 },
      description: "Syscall names the container called, sorted",
    },
    events: { type: "integer", format: "int64", minimum: 0, description: "Audit records behind them" },
  },
};

const nodeEntry: Schema = {
  type: "object",
  required: ["node", "updatedAt"],
  description:
    "Written by that node's Lockstep agent alone (server-side apply, field manager lockstep-agent-<node>).",
  properties: {
    node: { type: "string", maxLength: 253 },
    updatedAt: { type: "string", format: "date-time" },
    containers: {
      type: "array",
      maxItems: RECORDING_LIMITS.containersPerNode,
      "x-kubernetes-list-type": "map",
      "x-kubernetes-list-map-keys": ["podUID", "container"],
      items: container,
    },
    truncated: {
      type: "boolean",
      description: `The node hit a cap (${RECORDING_LIMITS.containersPerNode} containers, ${RECORDING_LIMITS.syscallNamesPerNode} syscall names), or its audit collector dropped calls of these pods (its per-pod and node caps, ADR 0038): the result may miss calls`,
    },
  },
};

const count = (description: string): Schema => ({
  type: "integer",
  format: "int64",
  minimum: 0,
  description,
});
const time: Schema = { type: "string", format: "date-time" };
const status: Schema = {
  type: "object",
  description:
    "Written by the Lockstep controller (summary, phase) and by each node's agent (its entry in nodes).",
  properties: {
    phase: { type: "string", enum: [...RECORDING_PHASES] },
    startedAt: time,
    stoppedAt: time,
    completedAt: time,
    recorderProfile: {
      type: "string",
      description: "The SeccompProfile recorded pods run under (logs every call)",
    },
    podsRecorded: count("Pods whose calls reached the recording"),
    nodesReporting: count("Nodes that reported calls"),
    eventsSeen: count("Audit records counted by the nodes"),
    syscalls: count("Distinct syscalls recorded, over every container"),
    podsRestarted: count("Pods deleted for restartPods"),
    profiles: {
      type: "array",
      items: { type: "string" },
      description: "The SeccompProfiles written when the recording completed",
    },
    conditions: (STATUS_SCHEMA.properties as Record<string, Schema>).conditions,
    nodes: {
      type: "array",
      maxItems: RECORDING_LIMITS.nodes,
      "x-kubernetes-list-type": "map",
      "x-kubernetes-list-map-keys": ["node"],
      items: nodeEntry,
    },
  },
};

export function profileRecordingCrd() {
  return lockstepCrd({
    kind: PROFILE_RECORDING_KIND,
    plural: PROFILE_RECORDING_PLURAL,
    singular: "profilerecording",
    shortNames: ["prec"],
    // Namespaced: a recording acts on pods of its own namespace, and namespace owners may be granted it.
    scope: "Namespaced",
    printerColumns: [
      { name: "Phase", type: "string", jsonPath: ".status.phase" },
      { name: "Pods", type: "integer", jsonPath: ".status.podsRecorded" },
      { name: "Nodes", type: "integer", jsonPath: ".status.nodesReporting" },
      { name: "Syscalls", type: "integer", jsonPath: ".status.syscalls" },
      { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
    ],
    what: "Records the syscalls of this namespace's selected pods on every node and writes them as SeccompProfiles when it ends (docs/adr/0039-profile-recording.md).",
    metadata: { type: "object" },
    spec,
    status,
  });
}
