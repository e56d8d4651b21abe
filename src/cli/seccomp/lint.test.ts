import { describe, expect, it } from "vitest";
import { RUNTIME_DEFAULT_SECCOMP } from "../../api/runtime-default.ts";
import type { LinuxSeccomp, SeccompArg } from "../../api/seccomp.ts";
import { profileFromSyscalls } from "../record/seccomp-profile.ts";
import { conditionHolds, LINT_RULES, lintSeccomp } from "./lint.ts";

const allow = (names: string[], extra = {}): LinuxSeccomp => ({
  defaultAction: "SCMP_ACT_ERRNO",
  syscalls: [
    { names: ["read", "write"], action: "SCMP_ACT_ALLOW" },
    { names, action: "SCMP_ACT_ALLOW", ...extra },
  ],
});
const rules = (p: LinuxSeccomp) => lintSeccomp(p).map((f) => `${f.rule}:${f.severity}`);
const arg = (index: number, op: SeccompArg["op"], value: number, valueTwo?: number): SeccompArg =>
  valueTwo === undefined ? { index, op, value } : { index, op, value, valueTwo };

// Each rule id has at least one test that produces it; this list is checked against LINT_RULES below.
const tested = new Set<string>();
const expectRules = (p: LinuxSeccomp, expected: string[]) => {
  const actual = rules(p);
  expect(actual).toEqual(expected);
  for (const r of actual) tested.add(r.split(":")[0] ?? "");
};

describe("lintSeccomp", () => {
  it("is quiet about a plain allow-list and a fresh recording", () => {
    expect(lintSeccomp(allow(["openat", "close"]))).toEqual([]);
    expect(lintSeccomp(profileFromSyscalls(["clone", "clone3", "openat", "wait4"]).seccomp)).toEqual([]);
  });

  it("holds runtime/default to the same rules: containerd allows ptrace (and no longer AF_VSOCK)", () => {
    expect(lintSeccomp(RUNTIME_DEFAULT_SECCOMP).map((f) => `${f.rule}: ${f.message.split(",")[0]}`)).toEqual([
      "dangerous-syscall: allows ptrace",
    ]);
  });

  it.each([
    "bpf",
    "mount",
    "umount2",
    "fsopen",
    "fsmount",
    "move_mount",
    "open_tree",
    "ptrace",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "keyctl",
    "add_key",
    "request_key",
    "userfaultfd",
  ])("flags %s as a dangerous allowance, with or without conditions", (name) => {
    expectRules(allow([name]), ["dangerous-syscall:error"]);
    expectRules(allow([name], { args: [arg(0, "SCMP_CMP_EQ", 0)] }), ["dangerous-syscall:error"]);
  });

  it("flags namespace creation without argument filters", () => {
    expectRules(allow(["unshare"]), ["namespace-creation:error"]);
    expectRules(allow(["setns"]), ["namespace-creation:error"]);
    expectRules(allow(["clone3"]), ["namespace-creation:error"]);
    expectRules(allow(["clone"]), ["namespace-creation:error"]);
    expectRules(allow(["unshare"], { args: [arg(0, "SCMP_CMP_EQ", 0x200)] }), []);
  });

  it("judges clone by what its conditions let through", () => {
    expectRules(allow(["clone"], { args: [arg(0, "SCMP_CMP_MASKED_EQ", 0x7e020000, 0)] }), []);
    // Filters only CLONE_NEWUSER: the other namespace flags still pass.
    expectRules(allow(["clone"], { args: [arg(0, "SCMP_CMP_MASKED_EQ", 0x10000000, 0)] }), [
      "namespace-creation:error",
    ]);
    // A filter on the wrong argument filters nothing.
    expectRules(allow(["clone"], { args: [arg(1, "SCMP_CMP_MASKED_EQ", 0x7e020000, 0)] }), [
      "namespace-creation:error",
    ]);
    // ... unless the profile is for s390x only, where the flags are argument 1.
    expectRules(
      {
        ...allow(["clone"], { args: [arg(1, "SCMP_CMP_MASKED_EQ", 0x7e020000, 0)] }),
        architectures: ["SCMP_ARCH_S390X"],
      },
      [],
    );
  });

  it("flags personality without filters", () => {
    expectRules(allow(["personality"]), ["personality-unfiltered:warning"]);
    expectRules(allow(["personality"], { args: [arg(0, "SCMP_CMP_EQ", 0)] }), []);
  });

  it("flags socket when its conditions let AF_VSOCK through", () => {
    expectRules(allow(["socket"]), ["socket-family:warning"]);
    expectRules(allow(["socket"], { args: [arg(0, "SCMP_CMP_NE", 40)] }), []);
    expectRules(allow(["socket"], { args: [arg(0, "SCMP_CMP_LE", 10)] }), []);
    expectRules(allow(["socket"], { args: [arg(0, "SCMP_CMP_GE", 2)] }), ["socket-family:warning"]);
  });

  it("reads conditions on a repeated argument as runc applies them: ORed", () => {
    // Meant as "any family but AF_ALG and AF_VSOCK"; runc adds two rules, and each lets the other family in.
    const notAlgNorVsock = { args: [arg(0, "SCMP_CMP_NE", 38), arg(0, "SCMP_CMP_NE", 40)] };
    expectRules(allow(["socket"], notAlgNorVsock), ["socket-family:warning", "conditions-ored:error"]);
    // A range on one argument is the same mistake: "2 <= family <= 10" becomes ">= 2 or <= 10".
    expectRules(allow(["socket"], { args: [arg(0, "SCMP_CMP_GE", 2), arg(0, "SCMP_CMP_LE", 10)] }), [
      "socket-family:warning",
      "conditions-ored:error",
    ]);
    // Once any argument repeats, a condition on another argument becomes a rule of its own too.
    const withType = {
      args: [arg(1, "SCMP_CMP_EQ", 1), arg(0, "SCMP_CMP_EQ", 2), arg(0, "SCMP_CMP_EQ", 10)],
    };
    expectRules(allow(["socket"], withType), ["socket-family:warning", "conditions-ored:error"]);
    // Conditions on different arguments stay ANDed.
    expectRules(allow(["socket"], { args: [arg(0, "SCMP_CMP_EQ", 2), arg(1, "SCMP_CMP_EQ", 1)] }), []);
    // A denial widened the same way denies more than written: a warning.
    const modes = [arg(1, "SCMP_CMP_EQ", 0o700), arg(1, "SCMP_CMP_EQ", 0o755)];
    expectRules(
      {
        defaultAction: "SCMP_ACT_ERRNO",
        syscalls: [{ names: ["chmod"], action: "SCMP_ACT_ERRNO", errnoRet: 13, args: modes }],
      },
      ["conditions-ored:warning"],
    );
  });

  it("flags conditional rules with different actions that a call can meet together", () => {
    const rules = (...syscalls: LinuxSeccomp["syscalls"]): LinuxSeccomp => ({
      defaultAction: "SCMP_ACT_ERRNO",
      syscalls: [{ names: ["read"], action: "SCMP_ACT_ALLOW" }, ...syscalls],
    });
    const deny = (...args: SeccompArg[]) => ({
      names: ["chmod"],
      action: "SCMP_ACT_ERRNO" as const,
      errnoRet: 13,
      args,
    });
    const permit = (...args: SeccompArg[]) => ({ names: ["chmod"], action: "SCMP_ACT_ALLOW" as const, args });
    // 0700 meets both "== 0700" and "!= 0755"; which wins is libseccomp's, not the order's.
    expectRules(rules(deny(arg(1, "SCMP_CMP_EQ", 0o700)), permit(arg(1, "SCMP_CMP_NE", 0o755))), [
      "conditions-overlap:warning",
    ]);
    expect(
      lintSeccomp(rules(deny(arg(1, "SCMP_CMP_EQ", 0o700)), permit(arg(0, "SCMP_CMP_NE", 1))))[0]?.message,
    ).toMatch(
      /syscalls\[1\] \(SCMP_ACT_ERRNO 13\) and syscalls\[2\] \(SCMP_ACT_ALLOW\) both match a call with argument 1 = 448, argument 0 = 0/,
    );
    // Exclusive conditions, or the same outcome, leave nothing to decide.
    expectRules(rules(deny(arg(0, "SCMP_CMP_EQ", 40)), permit(arg(0, "SCMP_CMP_NE", 40))), []);
    expectRules(rules(permit(arg(1, "SCMP_CMP_EQ", 0o700)), permit(arg(1, "SCMP_CMP_NE", 0o755))), []);
    expectRules(rules(deny(arg(1, "SCMP_CMP_EQ", 3)), permit(arg(1, "SCMP_CMP_MASKED_EQ", 0xff, 2))), []);
    expectRules(rules(deny(arg(1, "SCMP_CMP_EQ", 0x102)), permit(arg(1, "SCMP_CMP_MASKED_EQ", 0xff, 2))), [
      "conditions-overlap:warning",
    ]);
  });

  it("flags unknown syscalls", () => {
    expectRules(allow(["opn"]), ["unknown-syscall:error"]);
  });

  it("flags an allow-by-default profile and every dangerous call it does not deny", () => {
    const allowAll: LinuxSeccomp = {
      defaultAction: "SCMP_ACT_ALLOW",
      syscalls: [{ names: ["kexec_load", "kexec_file_load"], action: "SCMP_ACT_ERRNO" }],
    };
    const found = rules(allowAll);
    for (const r of found) tested.add(r.split(":")[0] ?? "");
    expect(found[0]).toBe("default-allow:warning");
    expect(found).toContain("dangerous-syscall:error");
    expect(found).toContain("namespace-creation:error");
    expect(lintSeccomp(allowAll).some((f) => f.message.includes("kexec_load"))).toBe(false);
    expect(lintSeccomp(allowAll).some((f) => f.message.includes("allows bpf"))).toBe(true);
  });

  it("flags rules that can never match", () => {
    expectRules(
      { defaultAction: "SCMP_ACT_ERRNO", syscalls: [{ names: ["mkdir"], action: "SCMP_ACT_ERRNO" }] },
      ["never-matches:warning"],
    );
    // ... unless it replaces a base profile's rule for those names.
    expect(
      lintSeccomp(
        { defaultAction: "SCMP_ACT_ERRNO", syscalls: [{ names: ["mkdir"], action: "SCMP_ACT_ERRNO" }] },
        { inheritsRules: true },
      ),
    ).toEqual([]);
    // Shadowed by an earlier unconditional rule, with or without conditions of its own.
    expectRules(
      {
        defaultAction: "SCMP_ACT_ERRNO",
        syscalls: [
          { names: ["read"], action: "SCMP_ACT_ALLOW" },
          { names: ["read"], action: "SCMP_ACT_LOG" },
          { names: ["read"], action: "SCMP_ACT_TRAP", args: [arg(0, "SCMP_CMP_EQ", 3)] },
        ],
      },
      ["never-matches:warning", "never-matches:warning"],
    );
    // A conditional rule loses to an unconditional rule for the same name even when it comes first.
    expectRules(
      {
        defaultAction: "SCMP_ACT_ERRNO",
        syscalls: [
          { names: ["mkdir"], action: "SCMP_ACT_ALLOW", args: [arg(1, "SCMP_CMP_GE", 0)] },
          { names: ["mkdir"], action: "SCMP_ACT_ERRNO", errnoRet: 13 },
        ],
      },
      ["never-matches:warning"],
    );
  });

  it("reads SCMP_CMP_MASKED_EQ as libseccomp does: bits of valueTwo outside the mask are dropped", () => {
    expectRules(allow(["ioctl"], { args: [arg(1, "SCMP_CMP_MASKED_EQ", 0x0f, 0x10)] }), [
      "masked-bits-ignored:warning",
    ]);
    expect(conditionHolds(arg(1, "SCMP_CMP_MASKED_EQ", 0x0f, 0x12), 0x02n)).toBe(true);
    expect(conditionHolds(arg(1, "SCMP_CMP_MASKED_EQ", 0x0f, 0x12), 0x12n)).toBe(true);
    expect(conditionHolds(arg(1, "SCMP_CMP_MASKED_EQ", 0x0f, 0x12), 0x03n)).toBe(false);
  });

  it("flags a condition that holds for every value", () => {
    expectRules(allow(["ioctl"], { args: [arg(1, "SCMP_CMP_MASKED_EQ", 0, 0)] }), [
      "condition-always-true:warning",
    ]);
    // With mask 0 both sides are 0, whatever valueTwo says.
    expectRules(allow(["ioctl"], { args: [arg(1, "SCMP_CMP_MASKED_EQ", 0, 5)] }), [
      "condition-always-true:warning",
    ]);
  });

  it("has a test for every rule", () => {
    expect([...tested].sort()).toEqual([...LINT_RULES].sort());
  });
});

describe("conditionHolds", () => {
  it("compares 64-bit values exactly", () => {
    const high = 2 ** 52;
    expect(conditionHolds(arg(0, "SCMP_CMP_MASKED_EQ", high, high), BigInt(high) | 1n)).toBe(true);
    expect(conditionHolds(arg(0, "SCMP_CMP_GT", high), BigInt(high) + 1n)).toBe(true);
    expect(conditionHolds(arg(0, "SCMP_CMP_LT", 5), 5n)).toBe(false);
  });
});

/** RFC 6902 add / remove / replace on plain data, enough to apply a finding's patch. */
function applyPatch<T>(document: T, patch: readonly { op: string; path: string; value?: unknown }[]): T {
  const copy = structuredClone(document) as unknown;
  for (const { op, path, value } of patch) {
    const keys = path.split("/").slice(1);
    const last = keys.pop() as string;
    let parent = copy as Record<string, unknown>;
    for (const key of keys) parent = parent[key] as Record<string, unknown>;
    if (Array.isArray(parent)) {
      const index = last === "-" ? parent.length : Number(last);
      if (op === "add") parent.splice(index, 0, value);
      else if (op === "remove") parent.splice(index, 1);
      else parent[index] = value;
    } else if (op === "remove") delete parent[last];
    else parent[last] = value;
  }
  return copy as T;
}

describe("every finding's fix", () => {
  const profiles: Record<string, LinuxSeccomp> = {
    unknown: allow(["opn"]),
    dangerous: allow(["bpf", "openat"]),
    dangerousAlone: allow(["mount"]),
    unshare: allow(["unshare"]),
    clone: allow(["clone", "openat"]),
    clone3: allow(["clone3"]),
    personality: allow(["personality", "openat"]),
    socket: allow(["socket"]),
    sameAsDefault: {
      defaultAction: "SCMP_ACT_ERRNO",
      syscalls: [{ names: ["mkdir"], action: "SCMP_ACT_ERRNO" }],
    },
    decidedElsewhere: {
      defaultAction: "SCMP_ACT_ERRNO",
      syscalls: [
        { names: ["mkdir"], action: "SCMP_ACT_ALLOW" },
        { names: ["mkdir", "rmdir"], action: "SCMP_ACT_ERRNO", errnoRet: 13 },
      ],
    },
    maskZero: allow(["ioctl"], { args: [arg(1, "SCMP_CMP_MASKED_EQ", 0, 0)] }),
    maskedBits: allow(["ioctl"], { args: [arg(1, "SCMP_CMP_MASKED_EQ", 0x0f, 0x13)] }),
    allowByDefault: { defaultAction: "SCMP_ACT_ALLOW", syscalls: [] },
  };

  it.each(Object.entries(profiles))(
    "has an action and words for %s, and its patch removes the finding",
    (_, profile) => {
      const findings = lintSeccomp(profile);
      expect(findings.length).toBeGreaterThan(0);
      for (const finding of findings) {
        expect(finding.fix.description.length).toBeGreaterThan(10);
        if (finding.fix.patch.length === 0) continue;
        const fixed = applyPatch(profile, finding.fix.patch);
        const after = lintSeccomp(fixed).map((f) => `${f.rule} ${f.message}`);
        expect(after, JSON.stringify(finding.fix.patch)).not.toContain(`${finding.rule} ${finding.message}`);
        // A fix never leaves a rule without names, which the schema would refuse.
        expect(fixed.syscalls.every((rule) => rule.names.length > 0)).toBe(true);
      }
    },
  );

  it("keeps the rule's other names when it takes one out", () => {
    const [finding] = lintSeccomp(allow(["bpf", "openat"]));
    expect(finding?.fix).toEqual({
      action: "remove-syscall",
      description: "remove bpf from this rule",
      patch: [{ op: "remove", path: "/syscalls/1/names/0" }],
    });
    const [clone3] = lintSeccomp(allow(["clone3"]));
    expect(clone3?.fix.patch).toEqual([
      {
        op: "replace",
        path: "/syscalls/1",
        value: { names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: 38 },
      },
    ]);
  });
});
