// From an strace log to a minimal seccomp profile. Pure: `lockstep record` runs strace and hands the
// log here. Every syscall name strace printed is kept, known or not: a name newer than our table is
// reported, never dropped, because dropping it would make the recorded program fail under its profile.
import type { LinuxSeccomp } from "./seccomp.ts";
import { isKnownSyscall } from "./syscalls.ts";

// `1234 openat(AT_FDCWD, ...) = 3`, `1234 <... wait4 resumed>...`, `[pid 1234] read(...)`, or without a pid.
const CALL = /^(?:\[pid\s+\d+\]\s+|\d+\s+)?([a-z_][a-z0-9_]*)\(/;
const RESUMED = /^(?:\[pid\s+\d+\]\s+|\d+\s+)?<\.\.\. ([a-z_][a-z0-9_]*) resumed>/;

/** Syscall names in an strace log (`strace -f`), in first-seen order. */
export function syscallsInTrace(log: string): string[] {
  const seen = new Set<string>();
  for (const line of log.split("\n")) {
    const match = CALL.exec(line) ?? RESUMED.exec(line);
    if (match?.[1]) seen.add(match[1]);
  }
  return [...seen];
}

/**
 * What the OCI runtime itself calls between applying the filter and the program's first instruction.
 * runc (with noNewPrivileges, the Kubernetes default) loads the filter last in its init process and then
 * execs the program; found empirically with runc 1.1 by recording a program and running it under only
 * its recorded syscalls (docs/adr/0040-recording.md). Without these, a perfect recording still fails with
 * "operation not permitted" at container start.
 */
export const RUNTIME_SYSCALLS: readonly string[] = [
  "capget",
  "capset",
  "chdir",
  "close",
  "close_range",
  "epoll_ctl",
  "epoll_pwait",
  "execve",
  "exit_group",
  "fchdir",
  "fcntl",
  "fstat",
  "fstatfs",
  "futex",
  "getdents64",
  "getpid",
  "getppid",
  "mmap",
  "nanosleep",
  "newfstatat",
  "openat",
  "prctl",
  "read",
  "rt_sigaction",
  "rt_sigprocmask",
  "rt_sigreturn",
  "sched_yield",
  "setgid",
  "setgroups",
  "setuid",
  "tgkill",
  "write",
];

export interface Recording {
  seccomp: LinuxSeccomp;
  /** Names strace printed that are not in the syscall table (kept in the profile). */
  unknown: string[];
}

/** A profile that allows exactly `syscalls` plus the runtime's own, and denies the rest with EPERM. */
export function profileFromSyscalls(syscalls: Iterable<string>): Recording {
  const names = [...new Set([...syscalls, ...RUNTIME_SYSCALLS])].sort();
  return {
    seccomp: {
      defaultAction: "SCMP_ACT_ERRNO",
      defaultErrnoRet: 1,
      syscalls: [{ names, action: "SCMP_ACT_ALLOW" }],
    },
    unknown: names.filter((n) => !isKnownSyscall(n)),
  };
}

/** Syscalls a profile allows unconditionally or conditionally (any ALLOW/LOG rule names them). */
export function allowedSyscalls(seccomp: Pick<LinuxSeccomp, "syscalls">): Set<string> {
  return new Set(
    seccomp.syscalls
      .filter((rule) => rule.action === "SCMP_ACT_ALLOW" || rule.action === "SCMP_ACT_LOG")
      .flatMap((rule) => rule.names),
  );
}
