import { describe, expect, it } from "vitest";
import { lintSeccomp } from "./lint-seccomp.ts";
import type { LinuxSeccomp } from "./seccomp.ts";

const allow = (names: string[], extra = {}): LinuxSeccomp => ({
  defaultAction: "SCMP_ACT_ERRNO",
  syscalls: [
    { names: ["read", "write"], action: "SCMP_ACT_ALLOW" },
    { names, action: "SCMP_ACT_ALLOW", ...extra },
  ],
});
const rules = (p: LinuxSeccomp) => lintSeccomp(p).map((f) => `${f.rule}:${f.severity}`);

describe("lintSeccomp", () => {
  it("is quiet about a plain allow-list", () => {
    expect(lintSeccomp(allow(["openat", "close"]))).toEqual([]);
  });
  it.each([
    "bpf",
    "mount",
    "ptrace",
    "kexec_load",
    "init_module",
    "keyctl",
    "userfaultfd",
    "fsopen",
    "add_key",
  ])("flags %s as a dangerous allowance", (name) => {
    expect(rules(allow([name]))).toEqual(["dangerous-syscall:error"]);
  });
  it("flags namespace creation without argument filters", () => {
    expect(rules(allow(["unshare"]))).toEqual(["namespace-creation:error"]);
    expect(rules(allow(["setns"]))).toEqual(["namespace-creation:error"]);
    expect(rules(allow(["clone"]))).toEqual(["namespace-creation:warning"]);
    expect(rules(allow(["clone3"]))).toEqual(["namespace-creation:warning"]);
    expect(
      rules(
        allow(["clone"], { args: [{ index: 0, value: 0x7e020000, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ" }] }),
      ),
    ).toEqual([]);
  });
  it("flags personality without filters", () => {
    expect(rules(allow(["personality"]))).toEqual(["personality-unfiltered:warning"]);
    expect(rules(allow(["personality"], { args: [{ index: 0, value: 0, op: "SCMP_CMP_EQ" }] }))).toEqual([]);
  });
  it("flags socket for every family (AF_VSOCK included)", () => {
    expect(rules(allow(["socket"]))).toEqual(["socket-family:warning"]);
    expect(rules(allow(["socket"], { args: [{ index: 0, value: 40, op: "SCMP_CMP_NE" }] }))).toEqual([]);
  });
  it("flags unknown syscalls", () => {
    expect(rules(allow(["opn"]))).toEqual(["unknown-syscall:error"]);
  });
  it("flags rules that can never match", () => {
    const same: LinuxSeccomp = {
      defaultAction: "SCMP_ACT_ERRNO",
      syscalls: [{ names: ["mkdir"], action: "SCMP_ACT_ERRNO" }],
    };
    expect(rules(same)).toEqual(["never-matches:warning"]);
    const shadowed: LinuxSeccomp = {
      defaultAction: "SCMP_ACT_ERRNO",
      syscalls: [
        { names: ["read"], action: "SCMP_ACT_ALLOW" },
        { names: ["read"], action: "SCMP_ACT_LOG" },
      ],
    };
    expect(rules(shadowed)).toEqual(["never-matches:warning"]);
    const impossible = allow(["ioctl"], {
      args: [{ index: 1, value: 0x0f, valueTwo: 0x10, op: "SCMP_CMP_MASKED_EQ" }],
    });
    expect(rules(impossible)).toEqual(["never-matches:warning"]);
  });
});
