import { describe, expect, it } from "vitest";
import { RUNTIME_DEFAULT_SECCOMP } from "../../api/runtime-default.ts";
import type { LinuxSeccomp } from "../../api/seccomp.ts";
import { KNOWN_SYSCALLS } from "../../api/syscalls.ts";
import { diffSeccomp, effectiveAllowSet, existsOnArch } from "./diff.ts";

const allowList = (...names: string[]): LinuxSeccomp => ({
  defaultAction: "SCMP_ACT_ERRNO",
  syscalls: [{ names, action: "SCMP_ACT_ALLOW" }],
});

describe("diffSeccomp", () => {
  it("lists what each allow-list has that the other lacks, sorted", () => {
    expect(diffSeccomp(allowList("write", "read", "mkdir"), allowList("read", "openat"))).toEqual({
      onlyA: ["mkdir", "write"],
      onlyB: ["openat"],
      both: 1,
    });
    expect(diffSeccomp(allowList("read"), allowList("read"))).toEqual({ onlyA: [], onlyB: [], both: 1 });
  });

  it("counts a conditionally allowed call as allowed", () => {
    expect(effectiveAllowSet(RUNTIME_DEFAULT_SECCOMP).has("clone")).toBe(true);
  });

  it("reads an allow-by-default profile as every known syscall it does not deny unconditionally", () => {
    const allowAll: LinuxSeccomp = {
      defaultAction: "SCMP_ACT_ALLOW",
      syscalls: [
        { names: ["mkdir"], action: "SCMP_ACT_ERRNO" },
        { names: ["socket"], action: "SCMP_ACT_ERRNO", args: [{ index: 0, value: 40, op: "SCMP_CMP_EQ" }] },
      ],
    };
    const allowed = effectiveAllowSet(allowAll);
    expect(allowed.has("mkdir")).toBe(false);
    expect(allowed.has("socket")).toBe(true);
    expect(allowed.size).toBe(KNOWN_SYSCALLS.size - 1);
    expect(diffSeccomp(allowList("mkdir", "read"), allowAll)).toEqual({
      onlyA: ["mkdir"],
      onlyB: [...KNOWN_SYSCALLS].filter((n) => n !== "mkdir" && n !== "read").sort(),
      both: 1,
    });
  });
});

describe("diffSeccomp on one architecture", () => {
  const allowAll: LinuxSeccomp = { defaultAction: "SCMP_ACT_ALLOW", syscalls: [] };

  it("leaves out calls that exist only on other architectures", () => {
    const onAmd64 = diffSeccomp(allowAll, RUNTIME_DEFAULT_SECCOMP, "amd64").onlyA;
    for (const armOnly of ["breakpoint", "cacheflush", "set_tls", "arm_fadvise64_64", "arm_sync_file_range"])
      expect(onAmd64).not.toContain(armOnly);
    expect(onAmd64).not.toContain("s390_runtime_instr");
    expect(onAmd64).not.toContain("riscv_hwprobe");
    const onArm64 = diffSeccomp(allowAll, allowList("read"), "arm64").onlyA;
    expect(onArm64).toContain("cacheflush");
    expect(onArm64).toContain("arm_fadvise64_64");
    expect(onArm64).not.toContain("arch_prctl");
  });

  it("knows which calls belong to which architecture, and keeps every call for an unknown node", () => {
    expect(existsOnArch("set_tls", "amd64")).toBe(false);
    expect(existsOnArch("set_tls", "arm64")).toBe(true);
    expect(existsOnArch("arch_prctl", "amd64")).toBe(true);
    expect(existsOnArch("sync_file_range2", "ppc64le")).toBe(true);
    expect(existsOnArch("read", "s390x")).toBe(true);
    expect(existsOnArch("set_tls", undefined)).toBe(true);
  });

  it("finds runtime/default equal to itself on every architecture it knows", () => {
    for (const arch of ["amd64", "arm64", "s390x", "ppc64le", "riscv64"])
      expect(diffSeccomp(RUNTIME_DEFAULT_SECCOMP, RUNTIME_DEFAULT_SECCOMP, arch)).toMatchObject({
        onlyA: [],
        onlyB: [],
      });
  });
});
