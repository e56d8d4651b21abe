// The seccomp profile a recording becomes: exactly the recorded syscalls plus what the OCI runtime itself
// calls under the filter (docs/adr/0040-recording.md). Shared by `lockstep record` (strace on a host) and
// the cluster's ProfileRecording (docs/adr/0039-profile-recording.md), so both write the same profile for
// the same calls. Pure.
import { RUNTIME_DEFAULT_CLONE_RULE } from "./runtime-default.ts";
import type { LinuxSeccomp, SeccompSyscall } from "./seccomp.ts";
import { isKnownSyscall } from "./syscalls.ts";

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

/** The errno clone3 returns so that libc falls back to clone. */
export const ENOSYS = 38;

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
