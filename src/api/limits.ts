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
