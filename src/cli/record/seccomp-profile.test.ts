import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { RUNTIME_DEFAULT_CLONE_RULE } from "../../api/runtime-default.ts";
import { lintSeccomp } from "../seccomp/lint.ts";
import {
  allowedSyscalls,
  profileFromSyscalls,
  RUNTIME_SYSCALLS,
  recordedSyscalls,
  syscallName,
  syscallsInTrace,
  TraceSyscalls,
} from "./seccomp-profile.ts";

// Shaped like `strace -f -qq` output: threads interleave, calls are split, signals and exits interleave.
const TRACE = `4242  execve("/bin/busybox", ["busybox", "sh", "-c", "true"], 0x7ffc /* 20 vars */) = 0
4242  brk(NULL)                         = 0x1e4d000
4242  rt_sigprocmask(SIG_BLOCK, ~[], [], 8) = 0
4242  clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD <unfinished ...>
4243  set_robust_list(0x7f0d, 24 <unfinished ...>
4242  <... clone resumed>, child_tidptr=0x7f0d) = 4243
4243  <... set_robust_list resumed>)     = 0
4243  <... statx resumed>{stx_mask=STATX_BASIC_STATS}) = 0
[pid  4244] rseq(0x7f0d, 0x20, 0, 0x53053053) = 0
4243  syscall_0x1c6(0x7f0d, 0x1, 0, 0)  = -1 ENOSYS (Function not implemented)
4243  syscall_0x3e7(0)                  = -1 ENOSYS (Function not implemented)
4243  +++ exited with 0 +++
4242  --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=4243, si_status=0} ---
4242  exit_group(0)                     = ?
4242  +++ exited with 0 +++
`;

describe("syscallsInTrace", () => {
  it("finds every call of every thread, split calls and unnamed numbers included", () => {
    expect(syscallsInTrace(TRACE)).toEqual([
      "execve",
      "brk",
      "rt_sigprocmask",
      "clone",
      "set_robust_list",
      "statx",
      "rseq",
      "futex_wake",
      "syscall_0x3e7",
      "exit_group",
    ]);
  });

  it("reads a single-process log without pids", () => {
    expect(syscallsInTrace('openat(AT_FDCWD, "/etc/hostname", O_RDONLY) = 3\nclose(3) = 0')).toEqual([
      "openat",
      "close",
    ]);
  });

  it("gives the same names however the log is cut into chunks", () => {
    fc.assert(
      fc.property(fc.array(fc.nat(TRACE.length), { maxLength: 12 }), (cuts) => {
        const points = [0, ...[...cuts].sort((a, b) => a - b), TRACE.length];
        const trace = new TraceSyscalls();
        for (let i = 1; i < points.length; i++) trace.add(TRACE.slice(points[i - 1], points[i]));
        expect(trace.finish()).toEqual(syscallsInTrace(TRACE));
      }),
    );
  });
});

describe("syscallName", () => {
  it("names the numbers every architecture shares, in hex or decimal, and keeps the rest", () => {
    expect(syscallName("syscall_0x1c6")).toBe("futex_wake");
    expect(syscallName("syscall_462")).toBe("mseal");
    expect(syscallName("syscall_0x3e7")).toBe("syscall_0x3e7");
    expect(syscallName("openat")).toBe("openat");
  });
});

describe("profileFromSyscalls", () => {
  it("allows exactly the recorded calls plus the runtime's, sorted, and denies the rest with EPERM", () => {
    const { seccomp, unknown } = profileFromSyscalls(["statx", "openat", "rseq", "statx"]);
    expect(seccomp.defaultAction).toBe("SCMP_ACT_ERRNO");
    expect(seccomp.defaultErrnoRet).toBe(1);
    const names = seccomp.syscalls[0]?.names ?? [];
    expect(names).toEqual([...new Set(["statx", "openat", "rseq", ...Object.keys(RUNTIME_SYSCALLS)])].sort());
    expect(unknown).toEqual([]);
  });

  it("keeps a name the table lacks and reports it", () => {
    const { seccomp, unknown } = profileFromSyscalls(["syscall_0x3e7", "read"]);
    expect(seccomp.syscalls[0]?.names).toContain("syscall_0x3e7");
    expect(unknown).toEqual(["syscall_0x3e7"]);
  });
});

describe("namespace creation", () => {
  it("narrows clone to no namespace flags and sends clone3 to the ENOSYS fallback", () => {
    const { seccomp } = profileFromSyscalls(["clone", "clone3", "wait4"]);
    expect(seccomp.syscalls[0]?.names).toContain("wait4");
    expect(seccomp.syscalls[0]?.names).not.toContain("clone");
    expect(seccomp.syscalls[0]?.names).not.toContain("clone3");
    expect(seccomp.syscalls.slice(1)).toEqual([
      RUNTIME_DEFAULT_CLONE_RULE,
      { names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: 38 },
    ]);
    expect(lintSeccomp(seccomp).filter((f) => f.rule === "namespace-creation")).toEqual([]);
  });

  it("keeps clone unconditional when the program created namespaces with it", () => {
    const trace = new TraceSyscalls();
    trace.add("77  clone(child_stack=NULL, flags=CLONE_NEWNS|CLONE_NEWPID|SIGCHLD <unfinished ...>\n");
    trace.add("78  clone(child_stack=NULL, flags=SIGCHLD) = 80\n");
    const names = trace.finish();
    expect([...trace.namespaceCreating]).toEqual(["clone"]);
    const { seccomp } = profileFromSyscalls(names, { namespaceCreating: trace.namespaceCreating });
    expect(seccomp.syscalls).toHaveLength(1);
    expect(seccomp.syscalls[0]?.names).toContain("clone");
  });

  it("merges an earlier recording with its clone and clone3 rules intact", () => {
    const earlier = profileFromSyscalls(["clone", "clone3", "read"]).seccomp;
    const { syscalls, namespaceCreating } = recordedSyscalls(earlier);
    expect(syscalls.has("clone3")).toBe(true);
    expect(namespaceCreating.size).toBe(0);
    expect(profileFromSyscalls(syscalls, { namespaceCreating }).seccomp).toEqual(earlier);
  });

  it("reports the conditional allowances a merge widens, clone's flag filter aside", () => {
    const handWritten = {
      syscalls: [
        {
          names: ["clone"],
          action: "SCMP_ACT_ALLOW" as const,
          args: [{ index: 0, value: 0x7e020000, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ" as const }],
        },
        {
          names: ["socket"],
          action: "SCMP_ACT_ALLOW" as const,
          args: [{ index: 0, value: 40, op: "SCMP_CMP_NE" as const }],
        },
      ],
    };
    expect(recordedSyscalls(handWritten).widened).toEqual(["socket"]);
  });
});

describe("allowedSyscalls", () => {
  it("collects allow and log rules, conditional or not, and ignores denials", () => {
    expect(
      allowedSyscalls({
        syscalls: [
          { names: ["read", "write"], action: "SCMP_ACT_ALLOW" },
          { names: ["socket"], action: "SCMP_ACT_LOG", args: [{ index: 0, value: 1, op: "SCMP_CMP_EQ" }] },
          { names: ["mkdir"], action: "SCMP_ACT_ERRNO" },
        ],
      }),
    ).toEqual(new Set(["read", "write", "socket"]));
  });
});
