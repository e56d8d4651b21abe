import { describe, expect, it } from "vitest";
import { AUDIT_ARCHES, auditArchName, syscallName } from "./syscall-numbers.ts";

describe("syscall numbers", () => {
  it("names the calls the real-node tests and the benchmark make, on both architectures", () => {
    expect(syscallName("x86_64", 83)).toBe("mkdir");
    expect(syscallName("x86_64", 258)).toBe("mkdirat");
    expect(syscallName("x86_64", 110)).toBe("getppid");
    expect(syscallName("aarch64", 34)).toBe("mkdirat");
    expect(syscallName("aarch64", 173)).toBe("getppid");
    expect(syscallName("aarch64", 83)).toBe("fdatasync");
  });

  it("reads AUDIT_ARCH values and refuses others (32-bit compat calls are counted, not guessed)", () => {
    expect(auditArchName(0xc000003e)).toBe("x86_64");
    expect(auditArchName(0xc00000b7)).toBe("aarch64");
    expect(auditArchName(0x40000003)).toBeUndefined();
    expect(Object.keys(AUDIT_ARCHES)).toHaveLength(2);
  });

  it("has no name for a number outside the table", () => {
    expect(syscallName("x86_64", 100_000)).toBeUndefined();
    expect(syscallName("x86_64", -1)).toBeUndefined();
  });
});
