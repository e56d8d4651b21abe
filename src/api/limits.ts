// Size limits of a profile object, shared by the CRD schema (src/manifests/crd.ts) and the zod schemas, so an
// oversized object is rejected by the API server and by every Lockstep part alike.
//
// Every component lists and caches every profile, so one profile's size is multiplied by the number of
// profiles in every agent, the controller and the webhook. Per-field limits alone allowed about 8 MB of
// spec (512 rules of 600 names and 6 arguments each), which etcd's 1.5 MiB request limit cut to
// 1.4 MB objects: 47 of them filled a 64 MiB list page and made every relist fail. The totals below keep
// the largest spec near 200 KB (MAX_PROFILE_SPEC_BYTES, checked by a test that builds it), 16 times the
// largest published profile (podman's default: 12 KB, 40 rules, 479 names, 12 argument conditions).
export const LIMITS = {
  syscallRules: 512,
  // More than the number of syscalls any kernel has, so one rule can list them all.
  namesPerRule: 600,
  /** Syscall names over all rules of one profile: eight times the largest published profile's 479. */
  syscallNamesTotal: 4096,
  /** Argument conditions over all rules of one profile (moby's default has 37). */
  syscallArgsTotal: 512,
  architectures: 16,
  nodeSelectorEntries: 32,
  pathsPerList: 256,
  pathLength: 4096,
  /** Characters of all paths of a structured AppArmor policy together: as much as a raw policy may hold. */
  policyPathBytes: 64 * 1024,
  capabilities: 64,
  rawPolicyBytes: 64 * 1024,
} as const;

/**
 * Failure labels (`failed.<kind>.lockstep.dev/<label-name>`) an agent publishes per kind on its Node.
 * Every writer of a Node shares etcd's request limit, 1.5 MiB (`--max-request-bytes`, 1,572,864 bytes):
 * 20,000 profiles failing on a node took a 1.97 MB PATCH, which etcd refused, and then the node could
 * publish nothing. A label costs at most 92 bytes of key (`failed.apparmor.lockstep.dev/`, 29, plus a
 * 63-character name) and 63 of value, 161 bytes as JSON (`"key":"value",`), plus 100 more for its entry
 * in the agent's managedFields (`"f:key":{},`): 261 bytes. 2 kinds x 128 labels is 66,816 bytes, 4.2 % of
 * the limit, which leaves the kubelet's status (at most 50 images), everyone else's labels and
 * annotations (256 KiB) their room. Past the cap the agent holds its revision label below the oldest
 * failure it could not label (node-agent/node-labels.ts, boundFailureLabels), so no label says a node
 * holds a profile it does not hold.
 */
export const MAX_FAILURE_LABELS_PER_KIND = 128;

/**
 * An upper bound of a profile's spec as JSON within LIMITS (src/api/limits.test.ts builds the largest
 * seccomp and AppArmor specs the limits allow and checks them against it).
 */
export const MAX_PROFILE_SPEC_BYTES = 256 * 1024;

/**
 * An upper bound of a whole profile object as the API server sends it: the spec, plus metadata (the
 * API server caps annotations at 256 KiB together, labels are 63-character values), managedFields and
 * the controller's status. Lists of profiles are paged so that a page of objects this large stays
 * within the client's answer limit (src/kube/informer.ts).
 */
export const MAX_PROFILE_OBJECT_BYTES = 768 * 1024;

/**
 * Profiles in one baseProfileName chain, the profile itself included (runtime/default not counted).
 * Real chains are 2 or 3 deep (an organisation's base, a team's, an application's); without a limit a
 * chain of 2,000 took every agent and the controller 29 s to resolve on every spec change. A deeper
 * chain is refused with InvalidInheritance, naming the limit.
 */
export const MAX_INHERITANCE_DEPTH = 16;

/**
 * What one node's entry in a ProfileRecording's status may hold (docs/adr/0039-profile-recording.md). A
 * recording's object holds an entry per reporting node, and etcd stores at most 1.5 MiB: an entry at its
 * caps is at most about 30 KB (32 containers of about 550 bytes each with their managedFields, 1,024
 * syscall names of at most 13 bytes as JSON), 32 of them about 990 KB. A container's set is bounded by
 * the syscall table anyway (LIMITS.namesPerRule is more than any kernel has). An agent at a cap keeps what
 * it has, drops what is new and says `truncated: true`; the controller's merge then says so in a condition.
 */
export const RECORDING_LIMITS = {
  /** Node entries in status.nodes: nodes beyond are refused by the API server (the CRD's maxItems). */
  nodes: 32,
  /** Containers one node reports for one recording. */
  containersPerNode: 32,
  /** Syscall names over all containers of one node's entry. */
  syscallNamesPerNode: 1024,
  /** Syscall names of one container (the table's size bounds it before this does). */
  syscallsPerContainer: LIMITS.namesPerRule,
  /** The longest duration a recording may ask for: a week. */
  maxDurationSeconds: 7 * 24 * 3600,
  /** Pod names listed in a recorded profile's provenance annotation (the count is always exact). */
  provenancePods: 20,
} as const;

/**
 * What one agent holds of the seccomp calls it observes (node-agent/audit-events.ts, docs/adr/0038):
 * - callKeysPerPod: distinct (container, syscall, arch, action) keys one pod may hold in one batch
 *   interval; past it the pod's further keys are only counted (its entry says truncated). A container
 *   makes a few hundred distinct syscalls at most, so an honest pod never reaches it; a hostile one
 *   cannot take more than this share of the total.
 * - callKeys: keys of all pods together in one interval (about 200 bytes each: 1.6 MB at most).
 * - callSeries: series of lockstep_profile_calls_total; further calls go to one {overflow="true"} series.
 *   Series of pods gone from the node are dropped, so the cap bounds what lives here, not history.
 * - eventsPerInterval: pod Events one agent sends per Event interval; the rest wait for the next.
 */
export const AUDIT_LIMITS = {
  callKeysPerPod: 512,
  callKeys: 8192,
  callSeries: 2000,
  eventsPerInterval: 100,
} as const;
