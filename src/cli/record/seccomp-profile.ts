// From an strace log to a minimal seccomp profile. Pure: `lockstep record` runs strace and feeds its
// log here. Every syscall name strace printed is kept, known or not: a name newer than our table is
// reported, never dropped, because dropping it would make the recorded program fail under its profile.
import { ENOSYS } from "../../api/recorded-seccomp.ts";
import { isAllowingAction, type LinuxSeccomp } from "../../api/seccomp.ts";
import { TraceCalls } from "./trace-calls.ts";

// The profile a recording becomes is shared with the cluster's recordings (ProfileRecording, ADR 0039).
export {
  profileFromSyscalls,
  type Recording,
  type RecordingOptions,
  RUNTIME_SYSCALLS,
} from "../../api/recorded-seccomp.ts";

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
