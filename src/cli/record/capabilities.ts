// Which capabilities a program needs, found by experiment rather than guessed: the program is run again
// with fewer capabilities, and a call that then fails with EPERM or EACCES where the full run's did not
// names the capabilities that could have let it through (capabilities(7)). The table only proposes;
// `lockstep record` keeps a capability only once runc has shown the program needs it (prove.ts).
import { LINUX_CAPABILITIES } from "../../api/apparmor.ts";
import type { TracedCall } from "./trace-calls.ts";

export type Capability = (typeof LINUX_CAPABILITIES)[number];

/** Capabilities in the order to try them: the narrowest that can explain the failure first. */
type Candidates = readonly Capability[];

const OWNERSHIP: Candidates = ["chown"];
const FILE_OWNER: Candidates = ["fowner", "fsetid"];
const UIDS: Candidates = ["setuid"];
const GIDS: Candidates = ["setgid"];
const SCHEDULING: Candidates = ["sys_nice"];
const MOUNTS: Candidates = ["sys_admin"];
const CLOCKS: Candidates = ["sys_time"];
const MODULES: Candidates = ["sys_module"];
const MEMORY_LOCKS: Candidates = ["ipc_lock"];
const TRACING: Candidates = ["sys_ptrace"];
// A path lookup or open denied by mode bits: searching and reading need only dac_read_search.
const FILE_ACCESS: Candidates = ["dac_read_search", "dac_override"];

/**
 * For each syscall, the errno it returns for lack of a capability and the capabilities that lift it.
 * capabilities(7) lists which checks each capability overrides; the kernel's errno is EPERM except
 * where it checks file permission bits (EACCES) and for bind below ip_unprivileged_port_start (EACCES).
 */
export const CAPABILITY_CHECKS: Readonly<
  Record<string, { errnos: readonly string[]; candidates: Candidates }>
> = {
  chown: { errnos: ["EPERM"], candidates: OWNERSHIP },
  fchown: { errnos: ["EPERM"], candidates: OWNERSHIP },
  lchown: { errnos: ["EPERM"], candidates: OWNERSHIP },
  fchownat: { errnos: ["EPERM"], candidates: OWNERSHIP },
  chmod: { errnos: ["EPERM"], candidates: FILE_OWNER },
  fchmod: { errnos: ["EPERM"], candidates: FILE_OWNER },
  fchmodat: { errnos: ["EPERM"], candidates: FILE_OWNER },
  fchmodat2: { errnos: ["EPERM"], candidates: FILE_OWNER },
  utimensat: { errnos: ["EPERM", "EACCES"], candidates: ["fowner", "dac_override"] },
  utimes: { errnos: ["EPERM", "EACCES"], candidates: ["fowner", "dac_override"] },
  setxattr: { errnos: ["EPERM"], candidates: ["fowner", "setfcap", "sys_admin"] },
  lsetxattr: { errnos: ["EPERM"], candidates: ["fowner", "setfcap", "sys_admin"] },
  fsetxattr: { errnos: ["EPERM"], candidates: ["fowner", "setfcap", "sys_admin"] },
  open: { errnos: ["EACCES"], candidates: FILE_ACCESS },
  openat: { errnos: ["EACCES"], candidates: FILE_ACCESS },
  openat2: { errnos: ["EACCES"], candidates: FILE_ACCESS },
  creat: { errnos: ["EACCES"], candidates: ["dac_override"] },
  execve: { errnos: ["EACCES"], candidates: FILE_ACCESS },
  mkdir: { errnos: ["EACCES"], candidates: ["dac_override"] },
  mkdirat: { errnos: ["EACCES"], candidates: ["dac_override"] },
  unlink: { errnos: ["EACCES", "EPERM"], candidates: ["dac_override", "fowner"] },
  unlinkat: { errnos: ["EACCES", "EPERM"], candidates: ["dac_override", "fowner"] },
  rename: { errnos: ["EACCES", "EPERM"], candidates: ["dac_override", "fowner"] },
  renameat: { errnos: ["EACCES", "EPERM"], candidates: ["dac_override", "fowner"] },
  renameat2: { errnos: ["EACCES", "EPERM"], candidates: ["dac_override", "fowner"] },
  linkat: { errnos: ["EPERM"], candidates: ["fowner"] },
  mknod: { errnos: ["EPERM"], candidates: ["mknod"] },
  mknodat: { errnos: ["EPERM"], candidates: ["mknod"] },
  bind: { errnos: ["EACCES"], candidates: ["net_bind_service"] },
  socket: { errnos: ["EPERM"], candidates: ["net_raw"] },
  setsockopt: { errnos: ["EPERM"], candidates: ["net_admin"] },
  kill: { errnos: ["EPERM"], candidates: ["kill"] },
  tkill: { errnos: ["EPERM"], candidates: ["kill"] },
  tgkill: { errnos: ["EPERM"], candidates: ["kill"] },
  setuid: { errnos: ["EPERM"], candidates: UIDS },
  setreuid: { errnos: ["EPERM"], candidates: UIDS },
  setresuid: { errnos: ["EPERM"], candidates: UIDS },
  setfsuid: { errnos: ["EPERM"], candidates: UIDS },
  setgid: { errnos: ["EPERM"], candidates: GIDS },
  setregid: { errnos: ["EPERM"], candidates: GIDS },
  setresgid: { errnos: ["EPERM"], candidates: GIDS },
  setfsgid: { errnos: ["EPERM"], candidates: GIDS },
  setgroups: { errnos: ["EPERM"], candidates: GIDS },
  capset: { errnos: ["EPERM"], candidates: ["setpcap"] },
  chroot: { errnos: ["EPERM"], candidates: ["sys_chroot"] },
  setpriority: { errnos: ["EACCES", "EPERM"], candidates: SCHEDULING },
  sched_setscheduler: { errnos: ["EPERM"], candidates: SCHEDULING },
  sched_setparam: { errnos: ["EPERM"], candidates: SCHEDULING },
  sched_setattr: { errnos: ["EPERM"], candidates: SCHEDULING },
  sched_setaffinity: { errnos: ["EPERM"], candidates: SCHEDULING },
  setrlimit: { errnos: ["EPERM"], candidates: ["sys_resource"] },
  prlimit64: { errnos: ["EPERM"], candidates: ["sys_resource"] },
  mlock: { errnos: ["EPERM"], candidates: MEMORY_LOCKS },
  mlock2: { errnos: ["EPERM"], candidates: MEMORY_LOCKS },
  mlockall: { errnos: ["EPERM"], candidates: MEMORY_LOCKS },
  mount: { errnos: ["EPERM"], candidates: MOUNTS },
  umount2: { errnos: ["EPERM"], candidates: MOUNTS },
  pivot_root: { errnos: ["EPERM"], candidates: MOUNTS },
  sethostname: { errnos: ["EPERM"], candidates: MOUNTS },
  setdomainname: { errnos: ["EPERM"], candidates: MOUNTS },
  unshare: { errnos: ["EPERM"], candidates: MOUNTS },
  setns: { errnos: ["EPERM"], candidates: MOUNTS },
  settimeofday: { errnos: ["EPERM"], candidates: CLOCKS },
  clock_settime: { errnos: ["EPERM"], candidates: CLOCKS },
  clock_adjtime: { errnos: ["EPERM"], candidates: CLOCKS },
  adjtimex: { errnos: ["EPERM"], candidates: CLOCKS },
  init_module: { errnos: ["EPERM"], candidates: MODULES },
  finit_module: { errnos: ["EPERM"], candidates: MODULES },
  delete_module: { errnos: ["EPERM"], candidates: MODULES },
  ptrace: { errnos: ["EPERM"], candidates: TRACING },
  process_vm_readv: { errnos: ["EPERM"], candidates: TRACING },
  process_vm_writev: { errnos: ["EPERM"], candidates: TRACING },
  iopl: { errnos: ["EPERM"], candidates: ["sys_rawio"] },
  ioperm: { errnos: ["EPERM"], candidates: ["sys_rawio"] },
  reboot: { errnos: ["EPERM"], candidates: ["sys_boot"] },
  acct: { errnos: ["EPERM"], candidates: ["sys_pacct"] },
  syslog: { errnos: ["EPERM"], candidates: ["syslog"] },
};

/** A call the reduced run saw denied where the full run did not. */
export interface PrivilegeFailure {
  /** The call as strace printed it, shortened: what the user reads in the report. */
  call: string;
  errno: string;
  /** Capabilities that may let it through, narrowest first; empty when the table knows none. */
  candidates: Candidates;
}

/** The errnos a kernel check returns for lack of privilege: all a denied call can tell us. */
export const DENIED_ERRNOS: ReadonlySet<string> = new Set(["EPERM", "EACCES"]);

/** Whether a call was refused for lack of privilege (or for any other reason the kernel spells alike). */
export function isDenied(call: TracedCall): boolean {
  return call.errno !== undefined && DENIED_ERRNOS.has(call.errno);
}

// The same call in two runs differs in descriptor numbers, addresses and socket inodes only.
function callKey(call: TracedCall): string {
  const args = call.args
    .replace(/0x[0-9a-f]+/g, "0x")
    .replace(/\b\d+</g, "<")
    .replace(/socket:\[\d+\]/g, "socket:[]");
  return `${call.name}(${args}) ${call.errno ?? ""}`;
}

/** The calls denied in `reduced` (EPERM, EACCES) that were not denied the same way in `full`. */
export function privilegeFailures(
  reduced: readonly TracedCall[],
  full: readonly TracedCall[],
): PrivilegeFailure[] {
  const deniedInFull = new Set(full.filter(isDenied).map(callKey));
  const failures = new Map<string, PrivilegeFailure>();
  for (const call of reduced) {
    if (!isDenied(call) || call.errno === undefined) continue;
    const key = callKey(call);
    if (deniedInFull.has(key) || failures.has(key)) continue;
    const check = CAPABILITY_CHECKS[call.name];
    const candidates = check?.errnos.includes(call.errno) ? check.candidates : [];
    const shown = `${call.name}(${call.args.length > 100 ? `${call.args.slice(0, 100)}...` : call.args})`;
    failures.set(key, { call: shown, errno: call.errno, candidates });
  }
  return [...failures.values()];
}

/**
 * The capabilities to add for the next run: for each failure, the first candidate not held yet, so a
 * failure that dac_read_search explains never gets dac_override. Empty when nothing more can be tried.
 */
export function nextCapabilities(
  failures: readonly PrivilegeFailure[],
  held: readonly Capability[],
): Capability[] {
  const next = new Set<Capability>();
  for (const failure of failures) {
    const candidate = failure.candidates.find((c) => !held.includes(c));
    if (candidate) next.add(candidate);
  }
  return [...next].sort(byKernelOrder);
}

/** Capabilities in capabilities(7) number order, as the kernel and `capsh --print` list them. */
export function byKernelOrder(a: Capability, b: Capability): number {
  return LINUX_CAPABILITIES.indexOf(a) - LINUX_CAPABILITIES.indexOf(b);
}

/** `NET_BIND_SERVICE`: how a pod's securityContext.capabilities spells `net_bind_service`. */
export function kubernetesCapabilityName(capability: Capability): string {
  return capability.toUpperCase();
}

/**
 * Whether `call` is the program starting: its execve of `program` that succeeded. In a trace of runc,
 * the calls before it are the runtime's own (it may be denied things on purpose); the program's start
 * after it.
 */
export function isProgramStart(call: TracedCall, program: string): boolean {
  return call.name === "execve" && call.result === 0 && call.args.startsWith(`${JSON.stringify(program)},`);
}

/** The failures that show a capability is needed: a call it lifts succeeded when recorded and failed without it. */
export function failuresLiftedBy(
  failures: readonly PrivilegeFailure[],
  capability: Capability,
): PrivilegeFailure[] {
  return failures.filter((f) => f.candidates.includes(capability));
}
