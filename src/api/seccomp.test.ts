import { describe, expect, it } from "vitest";
import { RUNTIME_DEFAULT_SECCOMP } from "./runtime-default.ts";
import {
  LinuxSeccompSchema,
  OciSeccompSchema,
  parseSeccompProfile,
  parseSeccompProfileSpec,
} from "./seccomp.ts";
import { isKnownSyscall, scmpArchesForNode } from "./syscalls.ts";

const web = {
  defaultAction: "SCMP_ACT_ERRNO",
  defaultErrnoRet: 1,
  architectures: ["SCMP_ARCH_X86_64"],
  flags: ["SECCOMP_FILTER_FLAG_LOG"],
  syscalls: [
    { names: ["read", "write"], action: "SCMP_ACT_ALLOW" },
    { names: ["personality"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: 8, op: "SCMP_CMP_EQ" }] },
    { names: ["mkdir"], action: "SCMP_ACT_ERRNO", errnoRet: 13 },
    {
      names: ["socket"],
      action: "SCMP_ACT_ALLOW",
      args: [{ index: 0, value: 0xff, valueTwo: 2, op: "SCMP_CMP_MASKED_EQ" }],
    },
  ],
  nodeSelector: { "kubernetes.io/os": "linux", tier: "web" },
};

function messageFor(spec: unknown): string {
  const parsed = parseSeccompProfileSpec("web", spec);
  if (parsed.ok) throw new Error("expected the spec to be rejected");
  return parsed.message;
}

describe("SeccompProfileSpec", () => {
  it("accepts the OCI linux.seccomp fields", () => {
    expect(parseSeccompProfileSpec("web", web)).toEqual({ ok: true, value: web });
  });

  it("accepts a child that only adds rules to a base", () => {
    const child = {
      baseProfileName: "runtime/default",
      syscalls: [{ names: ["chroot"], action: "SCMP_ACT_ALLOW" }],
    };
    expect(parseSeccompProfileSpec("web", child).ok).toBe(true);
  });

  it("names the object, the field and the bad syscall", () => {
    const spec = {
      ...web,
      syscalls: [...web.syscalls.slice(0, 3), { names: ["opn"], action: "SCMP_ACT_ALLOW" }],
    };
    expect(messageFor(spec)).toBe('SeccompProfile "web": spec.syscalls[3].names[0]: unknown syscall "opn"');
  });

  it.each([
    [{ syscalls: [] }, 'SeccompProfile "web": spec.defaultAction: required unless baseProfileName is set'],
    [
      { defaultAction: "SCMP_ACT_DENY" },
      'spec.defaultAction: unknown action "SCMP_ACT_DENY"; expected one of',
    ],
    [
      { defaultAction: "SCMP_ACT_NOTIFY" },
      "spec.defaultAction: SCMP_ACT_NOTIFY needs a seccomp notify listener",
    ],
    [
      { defaultAction: "SCMP_ACT_KILL", defaultErrnoRet: 1 },
      "spec.defaultErrnoRet: defaultErrnoRet is only allowed",
    ],
    [
      { defaultAction: "SCMP_ACT_ALLOW", listenerPath: "/run/x.sock" },
      'spec: Unrecognized key: "listenerPath"',
    ],
    [
      { defaultAction: "SCMP_ACT_ALLOW", architectures: ["SCMP_ARCH_Z80"] },
      "spec.architectures[0]: unknown architecture",
    ],
    [
      { defaultAction: "SCMP_ACT_ALLOW", flags: ["SECCOMP_FILTER_FLAG_NEW_LISTENER"] },
      "spec.flags[0]: unknown flag",
    ],
    [
      { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: [], action: "SCMP_ACT_ERRNO" }] },
      "spec.syscalls[0].names: must list at least one syscall",
    ],
    [
      {
        defaultAction: "SCMP_ACT_ALLOW",
        syscalls: [{ names: ["read"], action: "SCMP_ACT_KILL", errnoRet: 1 }],
      },
      "spec.syscalls[0].errnoRet: errnoRet is only allowed with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not SCMP_ACT_KILL",
    ],
    [
      { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["read"], action: "SCMP_ACT_NOTIFY" }] },
      "spec.syscalls[0].action: SCMP_ACT_NOTIFY needs",
    ],
    [
      {
        defaultAction: "SCMP_ACT_ALLOW",
        syscalls: [
          { names: ["read"], action: "SCMP_ACT_ERRNO", args: [{ index: 6, value: 0, op: "SCMP_CMP_EQ" }] },
        ],
      },
      "spec.syscalls[0].args[0].index: a syscall has 6 arguments",
    ],
    [
      {
        defaultAction: "SCMP_ACT_ALLOW",
        syscalls: [
          {
            names: ["read"],
            action: "SCMP_ACT_ERRNO",
            args: [{ index: 0, value: 2 ** 60, op: "SCMP_CMP_EQ" }],
          },
        ],
      },
      "spec.syscalls[0].args[0].value: must be at most 2^53-1",
    ],
    [
      {
        defaultAction: "SCMP_ACT_ALLOW",
        syscalls: [
          {
            names: ["read"],
            action: "SCMP_ACT_ERRNO",
            args: Array(7).fill({ index: 0, value: 0, op: "SCMP_CMP_EQ" }),
          },
        ],
      },
      "spec.syscalls[0].args: at most 6 argument conditions",
    ],
    [
      {
        defaultAction: "SCMP_ACT_ALLOW",
        syscalls: [{ names: ["read"], action: "SCMP_ACT_ALLOW", includes: { caps: [] } }],
      },
      'spec.syscalls[0]: "includes": a Docker/podman field that no OCI runtime reads; `lockstep import FILE` turns a Docker or podman profile into the OCI rules that engine would enforce',
    ],
    [
      { defaultAction: "SCMP_ACT_ALLOW", archMap: [], sycalls: [] },
      'spec: "archMap": a Docker/podman field that no OCI runtime reads; `lockstep import FILE` turns a Docker or podman profile into the OCI rules that engine would enforce; also unknown: sycalls',
    ],
    [{ baseProfileName: "../etc" }, 'spec.baseProfileName: invalid base profile "../etc"'],
    [
      { defaultAction: "SCMP_ACT_ALLOW", nodeSelector: { "bad key!": "x" } },
      'spec.nodeSelector["bad key!"]: invalid label key',
    ],
  ])("rejects %j", (spec, message) => {
    expect(messageFor(spec)).toContain(message);
  });

  it("reports every problem in one message", () => {
    const message = messageFor({
      defaultAction: "SCMP_ACT_X",
      syscalls: [{ names: ["opn", "clse"], action: "SCMP_ACT_ALLOW" }],
    });
    expect(message).toContain("spec.defaultAction");
    expect(message).toContain('spec.syscalls[0].names[0]: unknown syscall "opn"');
    expect(message).toContain('spec.syscalls[0].names[1]: unknown syscall "clse"');
  });
});

describe("SeccompProfile", () => {
  const object = {
    apiVersion: "lockstep.dev/v1alpha1",
    kind: "SeccompProfile",
    metadata: { name: "web", generation: 2, managedFields: [{}] },
    spec: web,
    status: { phase: "Installed", nodes: { installed: 3, desired: 3 }, version: "0123456789ab" },
  };

  it("parses an object from a watch, keeping metadata it does not know", () => {
    const parsed = parseSeccompProfile(object);
    expect(parsed.ok && parsed.value.metadata).toMatchObject({ name: "web", managedFields: [{}] });
  });

  it("names the object in errors about it", () => {
    const parsed = parseSeccompProfile({ ...object, spec: { ...web, defaultAction: "nope" } });
    expect(parsed.ok ? "" : parsed.message).toMatch(
      /^SeccompProfile "web": spec\.defaultAction: unknown action "nope"/,
    );
  });

  it("caps the missing-node list", () => {
    const missingNodes = Array.from({ length: 21 }, (_, i) => ({ node: `n${i}`, reason: "NotInstalled" }));
    expect(parseSeccompProfile({ ...object, status: { missingNodes } }).ok).toBe(false);
  });
});

describe("syscall and architecture tables", () => {
  it.each([
    "read",
    "_llseek",
    "_newselect",
    "socketcall",
    "ipc",
    "statx",
    "rseq",
    "clone3",
    "openat2",
    "close_range",
    "pidfd_open",
    "pidfd_send_signal",
    "pidfd_getfd",
    "faccessat2",
    "epoll_pwait2",
    "process_madvise",
    "landlock_create_ruleset",
    "landlock_add_rule",
    "landlock_restrict_self",
    "memfd_secret",
    "futex_waitv",
    "set_mempolicy_home_node",
    "cachestat",
    "fchmodat2",
    "map_shadow_stack",
    "futex_wake",
    "futex_wait",
    "futex_requeue",
    "statmount",
    "listmount",
    "lsm_get_self_attr",
    "lsm_set_self_attr",
    "lsm_list_modules",
    "mseal",
    "setxattrat",
    "getxattrat",
    "listxattrat",
    "removexattrat",
    "open_tree_attr",
    "uretprobe",
    "file_getattr",
    "file_setattr",
    "arch_prctl",
    "riscv_flush_icache",
    "s390_runtime_instr",
    "set_tls",
  ])("knows %s", (name) => {
    expect(isKnownSyscall(name)).toBe(true);
  });

  it.each(["opn", "", "READ", "seccomp_init", "x86_64", "toString"])("does not know %j", (name) => {
    expect(isKnownSyscall(name)).toBe(false);
  });

  it("maps node architectures to what they can execute", () => {
    expect(scmpArchesForNode("amd64")).toEqual(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
    expect(scmpArchesForNode("arm64")).toEqual(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]);
    expect(scmpArchesForNode("s390x")).toEqual(["SCMP_ARCH_S390X", "SCMP_ARCH_S390"]);
    expect(scmpArchesForNode("toString")).toBeUndefined();
  });

  it("ships runtime/default as valid plain OCI data", () => {
    expect(LinuxSeccompSchema.parse(RUNTIME_DEFAULT_SECCOMP)).toEqual(RUNTIME_DEFAULT_SECCOMP);
  });
});

describe("OciSeccompSchema", () => {
  it("accepts what the runtime spec allows: no syscalls, notify actions, the listener fields", () => {
    for (const input of [
      { defaultAction: "SCMP_ACT_ERRNO" },
      {
        defaultAction: "SCMP_ACT_ALLOW",
        listenerPath: "/run/seccomp-agent.socket",
        listenerMetadata: "web",
        syscalls: [{ names: ["mount"], action: "SCMP_ACT_NOTIFY" }],
      },
    ])
      expect(OciSeccompSchema.parse(input)).toEqual(input);
  });

  it("names Docker/podman fields and points at lockstep import", () => {
    const result = OciSeccompSchema.safeParse({ defaultAction: "SCMP_ACT_ERRNO", defaultErrno: "ENOSYS" });
    expect(result.error?.issues[0]?.message).toMatch(
      /^"defaultErrno": a Docker\/podman field .*`lockstep import FILE`/,
    );
  });
});
