// From an strace log to a minimal seccomp profile. Pure: `lockstep record` runs strace and feeds its
// log here. Every syscall name strace printed is kept, known or not: a name newer than our table is
// reported, never dropped, because dropping it would make the recorded program fail under its profile.
import { RUNTIME_DEFAULT_CLONE_RULE } from "../../api/runtime-default.ts";
import { isAllowingAction, type LinuxSeccomp, type SeccompSyscall } from "../../api/seccomp.ts";
import { isKnownSyscall } from "../../api/syscalls.ts";
import { TraceCalls } from "./trace-calls.ts";

// What strace prints for a number its own table lacks: `syscall_0x1c6` (strace >= 5.4) or `syscall_454`.
const UNNAMED = /^syscall_(0x[0-9a-f]+|\d+)$/;
// Calls whose flags can create a namespace (`flags=CLONE_NEWNS|...`, `{flags=CLONE_NEWPID...`).
const NAMESPACE_CALLS: ReadonlySet<string> = new Set(["clone", "clone3", "unshare"]);

/**
 * Syscalls added since the kernel unified numbering (5.1): one number on every architecture (alpha
 * aside), so an strace older than the kernel prints `syscall_0x1c6` and we can still name it.
 */
const UNIFIED_SYSCALL_NUMBERS: Readonly<Record<number, string>> = {
  424: "pidfd_send_signal",
  425: "io_uring_setup",
  426: "io_uring_enter",
  427: "io_uring_register",
  428: "open_tree",
  429: "move_mount",
  430: "fsopen",
  431: "fsconfig",
  432: "fsmount",
  433: "fspick",
  434: "pidfd_open",
  435: "clone3",
  436: "close_range",
  437: "openat2",
  438: "pidfd_getfd",
  439: "faccessat2",
  440: "process_madvise",
  441: "epoll_pwait2",
  442: "mount_setattr",
  443: "quotactl_fd",
  444: "landlock_create_ruleset",
  445: "landlock_add_rule",
  446: "landlock_restrict_self",
  447: "memfd_secret",
  448: "process_mrelease",
  449: "futex_waitv",
  450: "set_mempolicy_home_node",
  451: "cachestat",
  452: "fchmodat2",
  453: "map_shadow_stack",
  454: "futex_wake",
  455: "futex_wait",
  456: "futex_requeue",
  457: "statmount",
  458: "listmount",
  459: "lsm_get_self_attr",
  460: "lsm_set_self_attr",
  461: "lsm_list_modules",
  462: "mseal",
  463: "setxattrat",
  464: "getxattrat",
  465: "listxattrat",
  466: "removexattrat",
  467: "open_tree_attr",
  468: "file_getattr",
  469: "file_setattr",
};

/** The syscall name for what strace printed: itself, or for `syscall_0x1c6` the name of number 454 when known. */
export function syscallName(printed: string): string {
  const unnamed = UNNAMED.exec(printed);
  if (!unnamed?.[1]) return printed;
  return UNIFIED_SYSCALL_NUMBERS[Number(unnamed[1])] ?? printed;
}

/**
 * Collects syscall names from an strace log fed in arbitrary chunks (a long recording is read while
 * strace still writes it, and never held in memory as a whole). Lines that are not calls (`+++ exited
 * with 0 +++`, `--- SIGCHLD {...} ---`, `strace: ...`) are skipped; an `<unfinished ...>` call is
 * counted from its first half, so its `resumed` half adds nothing new but is accepted alone too.
 */
export class TraceSyscalls {
  private readonly seen = new Set<string>();
  /** Calls (clone, clone3) the program made with CLONE_NEW* flags: their recording must not filter them out. */
  readonly namespaceCreating = new Set<string>();
  // strace's line grammar has one home (trace-calls.ts); only the calls' starts matter here.
  private readonly calls = new TraceCalls(
    () => undefined,
    (name, args) => {
      this.seen.add(syscallName(name));
      if (NAMESPACE_CALLS.has(name) && args.includes("CLONE_NEW")) this.namespaceCreating.add(name);
    },
  );

  /** Adds a chunk of the log; a line cut at the chunk's end is completed by the next chunk. */
  add(chunk: string): void {
    this.calls.add(chunk);
  }

  /** The names seen so far, the last line included even without its newline. */
  finish(): string[] {
    this.calls.finish();
    return [...this.seen];
  }

  get size(): number {
    return this.seen.size;
  }
}

/** Syscall names in a whole strace log (`strace -f`), in first-seen order. */
export function syscallsInTrace(log: string): string[] {
  const trace = new TraceSyscalls();
  trace.add(log);
  return trace.finish();
}

/**
 * What the OCI runtime itself calls after applying the filter and before the program's first
 * instruction: a recording of the program alone cannot contain these, and without them the container
 * fails at start with "operation not permitted". Measured with runc 1.1.5 by tracing `runc run` under
 * an allow-everything filter and listing the init process's calls between PR_SET_SECCOMP and the
 * program's execve, in both modes Kubernetes uses (docs/adr/0040-recording.md):
 * - noNewPrivileges (allowPrivilegeEscalation: false): the filter is loaded last, just before execve.
 * - without it (the Kubernetes default): the filter is loaded before runc drops capabilities and
 *   switches user, so those calls run under the filter as well.
 * Plus what Go's runtime in runc init may call on any thread at any moment (TSYNC filters all threads).
 */
export const RUNTIME_SYSCALLS: Readonly<Record<string, string>> = {
  // Both modes: waiting for the exec FIFO, closing runc's descriptors, exec.
  close: "closes runc's descriptors before exec",
  epoll_ctl: "Go's netpoller, when runc opens the exec FIFO",
  execve: "starts the program",
  fstatfs: "checks that /proc/self/fd is procfs before closing descriptors",
  getdents64: "lists /proc/self/fd to mark descriptors close-on-exec",
  getpid: "Go's runtime (signal delivery to itself)",
  openat: "opens the exec FIFO and /proc/self/fd",
  prctl: "restores the parent-death signal",
  write: "signals the exec FIFO",
  // Without noNewPrivileges only: user, groups, capabilities and working directory are set after the filter.
  capget: "drops capabilities (no noNewPrivileges)",
  capset: "drops capabilities (no noNewPrivileges)",
  chdir: "enters process.cwd (no noNewPrivileges)",
  faccessat2: "looks the program up on PATH (no noNewPrivileges)",
  fcntl: "marks descriptors close-on-exec (no noNewPrivileges)",
  fstat: "checks descriptors (no noNewPrivileges)",
  getcwd: "checks process.cwd (no noNewPrivileges)",
  getppid: "checks that runc's parent is still alive (no noNewPrivileges)",
  newfstatat: "looks the program up on PATH (no noNewPrivileges)",
  read: "reads runc's sync pipe (no noNewPrivileges)",
  setgid: "switches to process.user.gid (no noNewPrivileges)",
  setgroups: "sets process.user.additionalGids (no noNewPrivileges)",
  setuid: "switches to process.user.uid (no noNewPrivileges)",
  // Go's runtime: scheduler, locks, preemption signals; seen in some runs and not others.
  futex: "Go's runtime locks",
  nanosleep: "Go's scheduler (usleep)",
  sched_yield: "Go's scheduler (osyield)",
  tgkill: "Go's preemption signals",
  rt_sigreturn: "returning from Go's preemption signal handler",
  rt_sigprocmask: "Go's signal masks around thread operations",
  exit_group: "runc init exits if exec fails, so the error reaches runc instead of a hang",
};

export interface Recording {
  seccomp: LinuxSeccomp;
  /** Names strace printed that are not in the syscall table (kept in the profile). */
  unknown: string[];
}

export interface RecordingOptions {
  /**
   * Calls among clone/clone3 the program used to create namespaces: those stay unconditional. Any
   * other recorded clone is allowed only without namespace flags, the same rule as runtime/default.
   */
  namespaceCreating?: ReadonlySet<string>;
}

const ENOSYS = 38;

/**
 * A profile that allows exactly `syscalls` plus the runtime's own, and denies the rest with EPERM.
 * Two calls are narrowed the way runtime/default narrows them, unless the recording shows the program
 * creating namespaces with them: clone is allowed only without CLONE_NEW* flags (runtime/default's rule,
 * which renderSeccompForNode moves to argument 1 on s390x), and clone3 (whose flags
 * sit behind a pointer seccomp cannot read) returns ENOSYS, on which glibc and musl fall back to clone.
 */
export function profileFromSyscalls(syscalls: Iterable<string>, options: RecordingOptions = {}): Recording {
  const names = [...new Set([...syscalls, ...Object.keys(RUNTIME_SYSCALLS)])].sort();
  const narrowed = (call: string) => names.includes(call) && !options.namespaceCreating?.has(call);
  const rules: SeccompSyscall[] = [
    {
      names: names.filter((n) => !((n === "clone" || n === "clone3") && narrowed(n))),
      action: "SCMP_ACT_ALLOW",
    },
  ];
  if (narrowed("clone")) rules.push(RUNTIME_DEFAULT_CLONE_RULE);
  if (narrowed("clone3")) rules.push({ names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: ENOSYS });
  return {
    seccomp: { defaultAction: "SCMP_ACT_ERRNO", defaultErrnoRet: 1, syscalls: rules },
    unknown: names.filter((n) => !isKnownSyscall(n)),
  };
}

/**
 * What an earlier recording (or any profile) contributes to a merge: the calls it allows, clone3 when it
 * sends clone3 to the ENOSYS fallback, and the calls it allows without conditions among clone/clone3.
 */
export function recordedSyscalls(seccomp: Pick<LinuxSeccomp, "syscalls">): {
  syscalls: Set<string>;
  namespaceCreating: Set<string>;
  /** Calls it allows only under argument conditions, which a recording allows whole (clone aside). */
  widened: string[];
} {
  const syscalls = allowedSyscalls(seccomp);
  const namespaceCreating = new Set<string>();
  const widened = new Set<string>();
  for (const rule of seccomp.syscalls) {
    if (isAllowingAction(rule.action) && (rule.args ?? []).length > 0)
      for (const name of rule.names) if (name !== "clone") widened.add(name);
    if (rule.action === "SCMP_ACT_ERRNO" && rule.errnoRet === ENOSYS && rule.names.includes("clone3"))
      syscalls.add("clone3");
    if (rule.action === "SCMP_ACT_ALLOW" && (rule.args ?? []).length === 0)
      for (const name of rule.names) if (name === "clone" || name === "clone3") namespaceCreating.add(name);
  }
  return { syscalls, namespaceCreating, widened: [...widened].sort() };
}

/** Syscalls a profile allows unconditionally or conditionally (any ALLOW/LOG rule names them). */
export function allowedSyscalls(seccomp: Pick<LinuxSeccomp, "syscalls">): Set<string> {
  return new Set(
    seccomp.syscalls.filter((rule) => isAllowingAction(rule.action)).flatMap((rule) => rule.names),
  );
}
