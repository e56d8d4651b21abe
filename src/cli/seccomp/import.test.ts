import { describe, expect, it } from "vitest";
import {
  type EngineSeccomp,
  EngineSeccompSchema,
  engineOf,
  type ImportTarget,
  mergeArchitectures,
  parseKernelVersion,
  resolveEngineProfile,
} from "./import.ts";

const target = (over: Partial<ImportTarget> = {}): ImportTarget => ({
  engine: "docker",
  nodeArch: "amd64",
  capabilities: new Set(["CAP_CHOWN"]),
  ...over,
});
const resolved = (profile: EngineSeccomp, over: Partial<ImportTarget> = {}) => {
  const result = resolveEngineProfile(EngineSeccompSchema.parse(profile), target(over));
  if (!result.ok) throw new Error(result.message);
  return result;
};
const namesOf = (profile: EngineSeccomp, over: Partial<ImportTarget> = {}) =>
  resolved(profile, over).seccomp.syscalls.map((rule) => rule.names.join(","));

describe("resolveEngineProfile", () => {
  const archMap = [
    { architecture: "SCMP_ARCH_X86_64" as const, subArchitectures: ["SCMP_ARCH_X86" as const] },
    { architecture: "SCMP_ARCH_PPC64LE" as const, subArchitectures: [] },
  ];

  it("takes the host's archMap entry, which podman knows for fewer architectures than Docker", () => {
    const profile = { defaultAction: "SCMP_ACT_ERRNO" as const, archMap, syscalls: [] };
    expect(resolved(profile).seccomp.architectures).toEqual(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]);
    expect(resolved(profile, { nodeArch: "ppc64le" }).seccomp.architectures).toEqual(["SCMP_ARCH_PPC64LE"]);
    expect(
      resolved(profile, { nodeArch: "ppc64le", engine: "podman" }).seccomp.architectures,
    ).toBeUndefined();
  });

  it("keeps a rule only when every included capability is there and no excluded one is", () => {
    const profile: EngineSeccomp = {
      defaultAction: "SCMP_ACT_ERRNO",
      syscalls: [
        { names: ["a"], action: "SCMP_ACT_ALLOW", includes: { caps: ["CAP_CHOWN", "CAP_KILL"] } },
        { names: ["b"], action: "SCMP_ACT_ALLOW", includes: { caps: ["CAP_CHOWN"] } },
        { names: ["c"], action: "SCMP_ACT_ALLOW", excludes: { caps: ["CAP_KILL", "CAP_CHOWN"] } },
        { names: ["d"], action: "SCMP_ACT_ALLOW", excludes: { caps: ["CAP_KILL"], arches: ["arm64"] } },
      ],
    };
    expect(namesOf(profile)).toEqual(["b", "d"]);
    expect(namesOf(profile, { nodeArch: "arm64" })).toEqual(["b"]);
  });

  it("reads minKernel for Docker only, and says when it assumed a new kernel", () => {
    const profile: EngineSeccomp = {
      defaultAction: "SCMP_ACT_ERRNO",
      syscalls: [
        { names: ["new"], action: "SCMP_ACT_ALLOW", includes: { minKernel: "5.10" } },
        { names: ["old"], action: "SCMP_ACT_ALLOW", excludes: { minKernel: "5.10" } },
      ],
    };
    expect(namesOf(profile, { kernel: parseKernelVersion("5.4.0-150-generic") })).toEqual(["old"]);
    expect(namesOf(profile, { kernel: parseKernelVersion("6.1") })).toEqual(["new"]);
    expect(resolved(profile).assumedKernels).toEqual([
      "syscalls[0] (minKernel 5.10)",
      "syscalls[1] (minKernel 5.10)",
    ]);
    expect(namesOf(profile, { engine: "podman", kernel: parseKernelVersion("4.4") })).toEqual(["new", "old"]);
  });

  it("lets podman's errno names win over errnoRet, which Docker keeps", () => {
    const profile: EngineSeccomp = {
      defaultAction: "SCMP_ACT_ERRNO",
      defaultErrnoRet: 1,
      defaultErrno: "ENOSYS",
      syscalls: [{ name: "mkdir", action: "SCMP_ACT_ERRNO", errnoRet: 1, errno: "EACCES" }],
    };
    expect(engineOf(EngineSeccompSchema.parse(profile))).toBe("podman");
    expect(resolved(profile, { engine: "podman" }).seccomp).toEqual({
      defaultAction: "SCMP_ACT_ERRNO",
      defaultErrnoRet: 38,
      syscalls: [{ names: ["mkdir"], action: "SCMP_ACT_ERRNO", errnoRet: 13 }],
    });
    expect(resolved(profile).seccomp.syscalls[0]?.errnoRet).toBe(1);
  });

  it("refuses what the engines refuse, naming the field", () => {
    const refused = (profile: EngineSeccomp) => {
      const result = resolveEngineProfile(EngineSeccompSchema.parse(profile), target());
      return result.ok ? "accepted" : result.message;
    };
    expect(refused({ syscalls: [] })).toMatch(/defaultAction: missing, and no syscalls/);
    expect(
      refused({
        defaultAction: "SCMP_ACT_ERRNO",
        syscalls: [{ name: "a", names: ["b"], action: "SCMP_ACT_ALLOW" }],
      }),
    ).toMatch(/syscalls\[0\]: name and names both given/);
    expect(refused({ defaultAction: "SCMP_ACT_ERRNO", defaultErrno: "ENOPE" })).toBe("accepted");
    expect(
      resolveEngineProfile(
        EngineSeccompSchema.parse({ defaultAction: "SCMP_ACT_ERRNO", defaultErrno: "ENOPE" }),
        target({ engine: "podman" }),
      ),
    ).toEqual({ ok: false, message: 'defaultErrno: unknown errno "ENOPE"' });
  });
});

describe("mergeArchitectures", () => {
  it("keeps each rule once and lists the rules only some architectures keep", () => {
    const rule = (name: string) => ({ names: [name], action: "SCMP_ACT_ALLOW" as const });
    const merged = mergeArchitectures([
      {
        nodeArch: "amd64",
        seccomp: {
          defaultAction: "SCMP_ACT_ERRNO",
          architectures: ["SCMP_ARCH_X86_64"],
          syscalls: [rule("read"), rule("arch_prctl")],
        },
      },
      {
        nodeArch: "arm64",
        seccomp: {
          defaultAction: "SCMP_ACT_ERRNO",
          architectures: ["SCMP_ARCH_AARCH64"],
          syscalls: [rule("read"), rule("set_tls")],
        },
      },
    ]);
    expect(merged.seccomp).toEqual({
      defaultAction: "SCMP_ACT_ERRNO",
      architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
      syscalls: [rule("read"), rule("arch_prctl"), rule("set_tls")],
    });
    expect(merged.onlyOn).toEqual([
      { rule: rule("arch_prctl"), nodeArches: ["amd64"] },
      { rule: rule("set_tls"), nodeArches: ["arm64"] },
    ]);
  });
});
