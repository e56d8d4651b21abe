// Size limits of a profile object, shared by the CRD schema (src/api/crd.ts) and the zod schemas, so an
// oversized object is rejected by the API server and by every Lockstep part alike.
export const LIMITS = {
  syscallRules: 512,
  // More than the number of syscalls any kernel has, so one rule can list them all.
  namesPerRule: 600,
  architectures: 16,
  nodeSelectorEntries: 32,
  pathsPerList: 256,
  pathLength: 4096,
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
