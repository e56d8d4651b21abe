import { describe, expect, it } from "vitest";
import { RUNTIME_DEFAULT_SECCOMP } from "../../api/runtime-default.ts";
import type { LinuxSeccomp } from "../../api/seccomp.ts";
import { KNOWN_SYSCALLS } from "../../api/syscalls.ts";
import { diffSeccomp, effectiveAllowSet } from "./diff.ts";

const allowList = (...names: string[]): LinuxSeccomp => ({
  defaultAction: "SCMP_ACT_ERRNO",
  syscalls: [{ names, action: "SCMP_ACT_ALLOW" }],
});

describe("diffSeccomp", () => {
  it("lists what each allow-list has that the other lacks, sorted", () => {
    expect(diffSeccomp(allowList("write", "read", "mkdir"), allowList("read", "openat"))).toEqual({
      onlyA: ["mkdir", "write"],
      onlyB: ["openat"],
    });
    expect(diffSeccomp(allowList("read"), allowList("read"))).toEqual({ onlyA: [], onlyB: [] });
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
    });
  });
});
