// From seccomp's audit records to calls of pods (docs/adr/0038). Pure: the audit reader's lines in
// (native/audit-reader: one JSON line per (pid, arch, syscall, action) and flush interval, and a line
// of its own counters), the pod of a process told by a resolver, ObservedCall batches out, with caps
// so that no pod, however noisy, holds more than its share (src/api/limits.ts AUDIT_LIMITS).
// audit-collector.ts runs the reader and carries these decisions out.
import * as z from "zod";
import { AUDIT_LIMITS } from "../src/api/limits.ts";
import { auditArchName, syscallName } from "../src/api/syscall-numbers.ts";

const count = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

/** A count line of the reader: `count` records of one process, call and action in one interval. */
export const ReaderCallsSchema = z.object({
  pid: z.number().int().positive(),
  arch: count,
  syscall: count,
  code: count,
  count: count.min(1),
  comm: z.string().max(64).optional(),
  /** /proc/<pid>/cgroup as the reader found it when the first record came (empty once the pid is gone). */
  cgroup: z.string().max(4096).optional(),
});
export type ReaderCalls = z.infer<typeof ReaderCallsSchema>;

/** The reader's own counters, since it started. overruns: ENOBUFS, records the kernel dropped for it. */
export const ReaderStatsSchema = z.object({
  stats: z.object({
    records: count,
    lines: count,
    overruns: count,
    unparsed: count,
    /** Records of new keys dropped while the agent was not reading and the reader held its most keys. */
    unwritten: count,
    rcvbuf: count,
  }),
});
export type ReaderStats = z.infer<typeof ReaderStatsSchema>["stats"];

export type ReaderLine =
  | { kind: "calls"; calls: ReaderCalls }
  | { kind: "stats"; stats: ReaderStats }
  | { kind: "invalid"; reason: string };

/** Longest line read; the reader writes a few hundred bytes (a cgroup path of a v1 host is the most). */
export const READER_LINE_MAX = 8192;

export function parseReaderLine(line: string): ReaderLine {
  if (line.length > READER_LINE_MAX) return { kind: "invalid", reason: `line of ${line.length} characters` };
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { kind: "invalid", reason: "not JSON" };
  }
  const stats = ReaderStatsSchema.safeParse(value);
  if (stats.success) return { kind: "stats", stats: stats.data.stats };
  const calls = ReaderCallsSchema.safeParse(value);
  if (calls.success) return { kind: "calls", calls: calls.data };
  return { kind: "invalid", reason: z.prettifyError(calls.error) };
}

/** seccomp's actions by SECCOMP_RET_ACTION_FULL (include/uapi/linux/seccomp.h), in libseccomp's words. */
const ACTIONS = {
  2147483648: "kill_process",
  0: "kill_thread",
  196608: "trap",
  327680: "errno",
  2143289344: "user_notif",
  2146435072: "trace",
  2147221504: "log",
  2147418112: "allow",
} as const;
export const SeccompActionNameSchema = z.enum(Object.values(ACTIONS));
export type SeccompActionName = z.infer<typeof SeccompActionNameSchema>;

/** The action of a record's code (the filter's return value; the low 16 bits are its data, e.g. the errno). */
export function seccompActionName(code: number): SeccompActionName | undefined {
  return (ACTIONS as Record<number, SeccompActionName>)[(code & 0xffff0000) >>> 0];
}

/** The container a process runs in, as the kubelet named it. */
export const ContainerIdentitySchema = z.object({
  namespace: z.string().min(1).max(63),
  pod: z.string().min(1).max(253),
  podUID: z.string().min(1).max(64),
  container: z.string().min(1).max(63),
});
export type ContainerIdentity = z.infer<typeof ContainerIdentitySchema>;

/** One call of a container seen `count` times under a seccomp action that logs (contract of issue 27). */
export const ObservedCallSchema = ContainerIdentitySchema.extend({
  syscall: z.string(),
  arch: z.string(),
  action: SeccompActionNameSchema,
  count: count.min(1),
});
export type ObservedCall = z.infer<typeof ObservedCallSchema>;

// A container's cgroup ends in its 64-hex id: ".../pod<uid>/<id>" (cgroupfs driver) or
// ".../cri-containerd-<id>.scope" (systemd driver).
const CONTAINER_ID = /(?:^|[/-])([0-9a-f]{64})(?:\.scope)?$/;

/** The container id in /proc/<pid>/cgroup (v2's "0::/path" line, else the first v1 line naming one). */
export function containerIdFromCgroup(text: string): string | undefined {
  const lines = text.split("\n").filter((line) => line !== "");
  const unified = (line: string) => line.startsWith("0::");
  for (const line of [...lines.filter(unified), ...lines.filter((l) => !unified(l))]) {
    // "hierarchy-id:controllers:path"; the path itself may hold colons.
    const path = line.split(":").slice(2).join(":");
    const match = CONTAINER_ID.exec(path);
    if (match?.[1]) return match[1];
  }
  return undefined;
}

/** The annotations containerd's CRI puts on a container's OCI bundle (config.json). */
export const CRI_ANNOTATIONS = {
  namespace: "io.kubernetes.cri.sandbox-namespace",
  pod: "io.kubernetes.cri.sandbox-name",
  podUID: "io.kubernetes.cri.sandbox-uid",
  container: "io.kubernetes.cri.container-name",
  type: "io.kubernetes.cri.container-type",
} as const;

const BundleSchema = z.object({ annotations: z.record(z.string(), z.string()).optional() });

/**
 * The pod and container of an OCI bundle's config.json, or undefined when it is not a Kubernetes
 * container (a sandbox's pause container, or something containerd runs for another client).
 */
export function identityFromBundle(configJson: string): ContainerIdentity | undefined {
  let value: unknown;
  try {
    value = JSON.parse(configJson);
  } catch {
    return undefined;
  }
  const annotations = BundleSchema.safeParse(value).data?.annotations ?? {};
  if (annotations[CRI_ANNOTATIONS.type] !== "container") return undefined;
  return ContainerIdentitySchema.safeParse({
    namespace: annotations[CRI_ANNOTATIONS.namespace],
    pod: annotations[CRI_ANNOTATIONS.pod],
    podUID: annotations[CRI_ANNOTATIONS.podUID],
    container: annotations[CRI_ANNOTATIONS.container],
  }).data;
}

/** Why a reader line gave no call: each a counter of the collector (lockstep_audit_records_ignored_total). */
export type IgnoredReason = "unknown-action" | "unknown-syscall" | "not-a-container" | "other-node";

export type MappedCalls =
  | { ok: true; call: Omit<ObservedCall, keyof ContainerIdentity>; containerId: string }
  | { ok: false; reason: IgnoredReason };

/** What a line says before its container is looked up: the call's names and the container id. */
export function mapReaderCalls(calls: ReaderCalls, procCgroup?: string): MappedCalls {
  const action = seccompActionName(calls.code);
  if (action === undefined) return { ok: false, reason: "unknown-action" };
  const arch = auditArchName(calls.arch);
  const syscall = arch && syscallName(arch, calls.syscall);
  if (!arch || !syscall) return { ok: false, reason: "unknown-syscall" };
  const containerId = containerIdFromCgroup(calls.cgroup || procCgroup || "");
  if (!containerId) return { ok: false, reason: "not-a-container" };
  return { ok: true, containerId, call: { syscall, arch, action, count: calls.count } };
}

/** Whether an installed seccomp profile (its OCI JSON) makes the kernel write audit records. */
export function profileLogsCalls(content: string): boolean {
  let value: unknown;
  try {
    value = JSON.parse(content);
  } catch {
    return false;
  }
  const parsed = z
    .object({
      defaultAction: z.string().optional(),
      flags: z.array(z.string()).optional(),
      syscalls: z.array(z.object({ action: z.string().optional() })).optional(),
    })
    .safeParse(value);
  if (!parsed.success) return false;
  const { defaultAction, flags = [], syscalls = [] } = parsed.data;
  return (
    defaultAction === "SCMP_ACT_LOG" ||
    flags.includes("SECCOMP_FILTER_FLAG_LOG") ||
    syscalls.some((rule) => rule.action === "SCMP_ACT_LOG")
  );
}

export interface CallBatch {
  calls: ObservedCall[];
  /** Pods (by uid) that reached AUDIT_LIMITS.callKeysPerPod this interval, with the calls not kept. */
  cappedPods: Map<string, { identity: ContainerIdentity; dropped: number }>;
  /** Calls of pods that found the node's total cap (callKeys) reached. */
  droppedOverTotal: number;
}

export interface CallBatcherLimits {
  callKeysPerPod: number;
  callKeys: number;
}

/**
 * Counts calls per (pod, container, syscall, arch, action) until drained, once per interval. Fair by
 * construction: a repeated call is one key whatever its count, a pod holds at most callKeysPerPod keys
 * (a pod of fork-bombing processes or random syscall numbers fills its own share, then is only
 * counted), and the node's total holds callKeys / callKeysPerPod such pods before a new one is refused.
 */
export class CallBatcher {
  private readonly limits: CallBatcherLimits;
  private calls = new Map<string, ObservedCall>();
  private keysPerPod = new Map<string, number>();
  private capped = new Map<string, { identity: ContainerIdentity; dropped: number }>();
  private droppedOverTotal = 0;

  constructor(limits: CallBatcherLimits = AUDIT_LIMITS) {
    this.limits = limits;
  }

  get size(): number {
    return this.calls.size;
  }

  add(call: ObservedCall): void {
    const key = [call.podUID, call.container, call.syscall, call.arch, call.action].join("\0");
    const known = this.calls.get(key);
    if (known) {
      known.count += call.count;
      return;
    }
    const podKeys = this.keysPerPod.get(call.podUID) ?? 0;
    if (podKeys >= this.limits.callKeysPerPod) {
      const entry = this.capped.get(call.podUID) ?? { identity: call, dropped: 0 };
      entry.dropped += call.count;
      this.capped.set(call.podUID, entry);
      return;
    }
    if (this.calls.size >= this.limits.callKeys) {
      this.droppedOverTotal += call.count;
      return;
    }
    this.keysPerPod.set(call.podUID, podKeys + 1);
    this.calls.set(key, { ...call });
  }

  /** What was counted since the last drain; starts the next interval empty. */
  drain(): CallBatch {
    const batch = {
      calls: [...this.calls.values()],
      cappedPods: this.capped,
      droppedOverTotal: this.droppedOverTotal,
    };
    this.calls = new Map();
    this.keysPerPod = new Map();
    this.capped = new Map();
    this.droppedOverTotal = 0;
    return batch;
  }
}
