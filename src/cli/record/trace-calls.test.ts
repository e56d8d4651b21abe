import { describe, expect, it } from "vitest";
import { callsInTrace, descriptorPaths, stringArgs, TraceCalls, type TracedCall } from "./trace-calls.ts";

// Shaped like `strace -f -qq -y -s 0 -e signal=none` output, threads interleaved.
const TRACE = `100 execve("/usr/bin/busybox", [...], 0x7fff /* 39 vars */) = 0
100 openat(AT_FDCWD</etc>, "hostname", O_RDONLY) = 3</etc/hostname>
100 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|SIGCHLD <unfinished ...>
101 set_robust_list(0x7f0d, 24 <unfinished ...>
100 <... clone resumed>, child_tidptr=0x1243a690) = 101
101 <... set_robust_list resumed>) = 0
101 fchownat(AT_FDCWD</w>, "/tmp/a) = b", 1, 1, AT_SYMLINK_NOFOLLOW) = -1 EPERM (Operation not permitted)
101 bind(3<socket:[35904]>, {sa_family=AF_INET, sin_port=htons(80)}, 16) = -1 EACCES (Permission denied)
101 mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f8a2c000000
101 +++ exited with 1 +++
100 --- SIGCHLD {si_signo=SIGCHLD} ---
100 exit_group(0) = ?
100 +++ exited with 0 +++
`;

describe("TraceCalls", () => {
  it("gives each call whole, with its result, the path behind a returned descriptor and the errno", () => {
    expect(callsInTrace(TRACE)).toEqual<TracedCall[]>([
      { pid: 100, name: "execve", args: '"/usr/bin/busybox", [...], 0x7fff /* 39 vars */', result: 0 },
      {
        pid: 100,
        name: "openat",
        args: 'AT_FDCWD</etc>, "hostname", O_RDONLY',
        result: 3,
        resultPath: "/etc/hostname",
      },
      {
        pid: 100,
        name: "clone",
        args: "child_stack=NULL, flags=CLONE_CHILD_CLEARTID|SIGCHLD, child_tidptr=0x1243a690",
        result: 101,
      },
      { pid: 101, name: "set_robust_list", args: "0x7f0d, 24", result: 0 },
      {
        pid: 101,
        name: "fchownat",
        args: 'AT_FDCWD</w>, "/tmp/a) = b", 1, 1, AT_SYMLINK_NOFOLLOW',
        result: -1,
        errno: "EPERM",
      },
      {
        pid: 101,
        name: "bind",
        args: "3<socket:[35904]>, {sa_family=AF_INET, sin_port=htons(80)}, 16",
        result: -1,
        errno: "EACCES",
      },
      {
        pid: 101,
        name: "mmap",
        args: "NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0",
        result: 0x7f8a2c000000,
      },
      { pid: 100, name: "exit_group", args: "0" },
    ]);
  });

  it("gives the same calls however the log is cut into chunks", () => {
    const whole = callsInTrace(TRACE);
    for (const size of [1, 7, 64]) {
      const calls: TracedCall[] = [];
      const trace = new TraceCalls((call) => calls.push(call));
      for (let i = 0; i < TRACE.length; i += size) trace.add(TRACE.slice(i, i + size));
      trace.finish();
      expect(calls).toEqual(whole);
    }
  });
});

describe("arguments", () => {
  it("reads quoted paths with strace's C escapes, and the paths -y prints after descriptors", () => {
    expect(stringArgs('AT_FDCWD</a b>, "/tmp/x\\"y\\\\z\\n\\303\\251", O_RDONLY')).toEqual([
      '/tmp/x"y\\z\n\u00c3\u00a9',
    ]);
    expect(stringArgs('"/old", "/new"')).toEqual(["/old", "/new"]);
    expect(descriptorPaths('AT_FDCWD</etc>, "x", 3</tmp/y>, 0')).toEqual(["/etc", "/tmp/y"]);
  });
});
