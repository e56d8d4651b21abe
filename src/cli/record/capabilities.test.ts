import { describe, expect, it } from "vitest";
import { isKnownSyscall } from "../../api/syscalls.ts";
import {
  CAPABILITY_CHECKS,
  DENIED_ERRNOS,
  failuresLiftedBy,
  isProgramStart,
  nextCapabilities,
  type PrivilegeFailure,
  privilegeFailures,
} from "./capabilities.ts";
import { callsInTrace } from "./trace-calls.ts";

describe("CAPABILITY_CHECKS", () => {
  it("names only syscalls the syscall table knows, with EPERM or EACCES", () => {
    for (const [name, check] of Object.entries(CAPABILITY_CHECKS)) {
      expect(isKnownSyscall(name), name).toBe(true);
      expect(check.errnos.length, name).toBeGreaterThan(0);
      for (const errno of check.errnos) expect(DENIED_ERRNOS.has(errno), `${name}: ${errno}`).toBe(true);
    }
  });
});

describe("privilegeFailures", () => {
  const full = callsInTrace(`1 openat(AT_FDCWD</>, "/root/secret", O_RDONLY) = -1 EACCES (Permission denied)
1 fchownat(AT_FDCWD</w>, "/w/f", 1, 1, 0) = 0
`);

  it("keeps the denials the full run did not have, with the capabilities that may lift them", () => {
    const reduced =
      callsInTrace(`7 openat(AT_FDCWD</>, "/root/secret", O_RDONLY) = -1 EACCES (Permission denied)
7 fchownat(AT_FDCWD</w>, "/w/f", 1, 1, 0) = -1 EPERM (Operation not permitted)
8 bind(4<socket:[99]>, {sa_family=AF_INET, sin_port=htons(80)}, 16) = -1 EACCES (Permission denied)
8 bind(5<socket:[100]>, {sa_family=AF_INET, sin_port=htons(80)}, 16) = -1 EACCES (Permission denied)
8 write(1</dev/pts/0>, "", 5) = -1 EPERM (Operation not permitted)
8 kill(12, SIGTERM) = -1 ESRCH (No such process)
`);
    expect(privilegeFailures(reduced, full)).toEqual<PrivilegeFailure[]>([
      { call: 'fchownat(AT_FDCWD</w>, "/w/f", 1, 1, 0)', errno: "EPERM", candidates: ["chown"] },
      {
        call: "bind(4<socket:[99]>, {sa_family=AF_INET, sin_port=htons(80)}, 16)",
        errno: "EACCES",
        candidates: ["net_bind_service"],
      },
      // Denied for lack of privilege, but no capability is known to lift it: reported, never guessed.
      { call: 'write(1</dev/pts/0>, "", 5)', errno: "EPERM", candidates: [] },
    ]);
  });
});

describe("nextCapabilities", () => {
  const failure = (candidates: PrivilegeFailure["candidates"]): PrivilegeFailure => ({
    call: "x()",
    errno: "EPERM",
    candidates,
  });

  it("tries the narrowest capability first and the next one only if the call is still denied", () => {
    const open = failure(["dac_read_search", "dac_override"]);
    expect(nextCapabilities([open, failure(["net_bind_service"])], [])).toEqual([
      "dac_read_search",
      "net_bind_service",
    ]);
    expect(nextCapabilities([open], ["dac_read_search", "net_bind_service"])).toEqual(["dac_override"]);
    expect(nextCapabilities([open], ["dac_read_search", "dac_override"])).toEqual([]);
    expect(nextCapabilities([failure([])], [])).toEqual([]);
  });

  it("lists what it adds in the kernel's order", () => {
    expect(nextCapabilities([failure(["sys_admin"]), failure(["chown"]), failure(["kill"])], [])).toEqual([
      "chown",
      "kill",
      "sys_admin",
    ]);
  });
});

describe("reading a traced runc run", () => {
  const call = (name: string, args: string, result: number, errno?: string) => ({
    pid: 7,
    name,
    args,
    result,
    ...(errno ? { errno } : {}),
  });

  it("finds the program's own start among runc's calls", () => {
    expect(
      isProgramStart(
        call("execve", '"/usr/bin/chown", ["/usr/bin/chown", "1", "f"], 0x7ffd /* 12 vars */', 0),
        "/usr/bin/chown",
      ),
    ).toBe(true);
    expect(
      isProgramStart(
        call("execve", '"/usr/bin/chown", ["chown"], 0x1 /* 1 var */', -1, "EACCES"),
        "/usr/bin/chown",
      ),
    ).toBe(false);
    expect(isProgramStart(call("execve", '"/usr/bin/chownx", ["x"], 0x1', 0), "/usr/bin/chown")).toBe(false);
    expect(isProgramStart(call("openat", '"/usr/bin/chown", O_RDONLY', 0), "/usr/bin/chown")).toBe(false);
  });

  it("keeps the failures a capability lifts: the proof that it is needed, whatever the exit code", () => {
    const failures = privilegeFailures(
      [
        call("fchownat", 'AT_FDCWD, "/v/f", 1, -1, 0', -1, "EPERM"),
        call("open", '"/etc/shadow", O_RDONLY', -1, "EACCES"),
      ],
      [],
    );
    expect(failuresLiftedBy(failures, "chown").map((f) => f.call)).toEqual([
      'fchownat(AT_FDCWD, "/v/f", 1, -1, 0)',
    ]);
    expect(failuresLiftedBy(failures, "net_bind_service")).toEqual([]);
  });
});
