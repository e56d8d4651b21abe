import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MAX_INHERITANCE_DEPTH } from "./limits.ts";
import {
  type ResolvedSeccomp,
  renderSeccompForNode,
  resolveSeccompProfile,
  seccompProfileVersion,
  serializeSeccomp,
} from "./render-seccomp.ts";
import { RUNTIME_DEFAULT_SECCOMP } from "./runtime-default.ts";
import {
  LinuxSeccompSchema,
  SECCOMP_ACTIONS,
  SECCOMP_FLAGS,
  SECCOMP_OPERATORS,
  type SeccompProfileSpec,
  SeccompProfileSpecSchema,
  type SeccompSyscall,
} from "./seccomp.ts";
import { KNOWN_SYSCALLS, SCMP_ARCHES } from "./syscalls.ts";

function resolve(name: string, profiles: Record<string, SeccompProfileSpec>) {
  return resolveSeccompProfile(name, new Map(Object.entries(profiles)));
}

function resolved(name: string, profiles: Record<string, SeccompProfileSpec>): ResolvedSeccomp {
  const result = resolve(name, profiles);
  if (!result.ok) throw new Error(result.message);
  return result.spec;
}

const allowRead: SeccompSyscall = { names: ["read"], action: "SCMP_ACT_ALLOW" };
const denyMkdir: SeccompSyscall = { names: ["mkdir"], action: "SCMP_ACT_ERRNO", errnoRet: 13 };

describe("resolveSeccompProfile", () => {
  it("returns a profile without a base as it is", () => {
    const spec: SeccompProfileSpec = {
      defaultAction: "SCMP_ACT_ERRNO",
      syscalls: [allowRead],
      nodeSelector: { a: "b" },
    };
    expect(resolved("web", { web: spec })).toEqual({
      defaultAction: "SCMP_ACT_ERRNO",
      syscalls: [allowRead],
    });
  });

  it("lets a child override scalar fields and appends its rules after the base's", () => {
    const profiles: Record<string, SeccompProfileSpec> = {
      base: {
        defaultAction: "SCMP_ACT_ERRNO",
        defaultErrnoRet: 1,
        architectures: ["SCMP_ARCH_X86_64"],
        flags: ["SECCOMP_FILTER_FLAG_LOG"],
        syscalls: [allowRead],
      },
      child: { baseProfileName: "base", flags: [], syscalls: [denyMkdir] },
    };
    expect(resolved("child", profiles)).toEqual({
      defaultAction: "SCMP_ACT_ERRNO",
      defaultErrnoRet: 1,
      architectures: ["SCMP_ARCH_X86_64"],
      flags: [],
      syscalls: [allowRead, denyMkdir],
    });
  });

  it("does not carry the base's errno over to a child's own default action", () => {
    const profiles: Record<string, SeccompProfileSpec> = {
      base: { defaultAction: "SCMP_ACT_ERRNO", defaultErrnoRet: 38 },
      child: { baseProfileName: "base", defaultAction: "SCMP_ACT_KILL_PROCESS" },
      errno: { baseProfileName: "base", defaultErrnoRet: 13 },
    };
    expect(resolved("child", profiles)).toEqual({ defaultAction: "SCMP_ACT_KILL_PROCESS", syscalls: [] });
    expect(resolved("errno", profiles).defaultErrnoRet).toBe(13);
  });

  it("follows chains down to runtime/default", () => {
    const profiles: Record<string, SeccompProfileSpec> = {
      a: { baseProfileName: "b", syscalls: [denyMkdir] },
      b: { baseProfileName: "runtime/default", syscalls: [allowRead] },
    };
    const spec = resolved("a", profiles);
    expect(spec.defaultAction).toBe("SCMP_ACT_ERRNO");
    const named = new Set([...allowRead.names, ...denyMkdir.names]);
    const baseRules = RUNTIME_DEFAULT_SECCOMP.syscalls
      .map((rule) => ({ ...rule, names: rule.names.filter((n) => !named.has(n)) }))
      .filter((rule) => rule.names.length > 0);
    expect(spec.syscalls).toEqual([...baseRules, allowRead, denyMkdir]);
  });

  it("lets a child's rules take over the syscalls they name, so a child can deny what its base allows", () => {
    const spec = resolved("a", {
      a: { baseProfileName: "b", syscalls: [denyMkdir] },
      b: {
        defaultAction: "SCMP_ACT_ERRNO",
        syscalls: [{ names: ["mkdir", "read"], action: "SCMP_ACT_ALLOW" }],
      },
    });
    expect(spec.syscalls).toEqual([{ names: ["read"], action: "SCMP_ACT_ALLOW" }, denyMkdir]);
  });

  it("reports a cycle with its chain", () => {
    const profiles: Record<string, SeccompProfileSpec> = {
      a: { baseProfileName: "b" },
      b: { baseProfileName: "c" },
      c: { baseProfileName: "b" },
      self: { baseProfileName: "self" },
    };
    expect(resolve("a", profiles)).toEqual({
      ok: false,
      reason: "BaseCycle",
      message: 'SeccompProfile "a": spec.baseProfileName: inheritance cycle a -> b -> c -> b',
    });
    expect(resolve("self", profiles)).toMatchObject({
      reason: "BaseCycle",
      message: expect.stringContaining("self -> self"),
    });
  });

  it("reports a missing base and a missing profile", () => {
    const profiles: Record<string, SeccompProfileSpec> = {
      a: { baseProfileName: "b" },
      b: { baseProfileName: "gone" },
    };
    expect(resolve("a", profiles)).toEqual({
      ok: false,
      reason: "BaseNotFound",
      message: 'SeccompProfile "a": spec.baseProfileName: base profile "gone" not found (a -> b -> gone)',
    });
    expect(resolve("nope", profiles)).toMatchObject({ ok: false, reason: "NotFound" });
  });

  it("refuses a chain deeper than MAX_INHERITANCE_DEPTH, naming the limit, and resolves one at the limit", () => {
    // p0 -> p1 -> ... -> p<n-1>, the root allowing read.
    const chain = (n: number): Record<string, SeccompProfileSpec> =>
      Object.fromEntries(
        Array.from({ length: n }, (_, i) => [
          `p${i}`,
          i === n - 1
            ? { defaultAction: "SCMP_ACT_ERRNO", syscalls: [allowRead] }
            : { baseProfileName: `p${i + 1}` },
        ]),
      );
    expect(resolved("p0", chain(MAX_INHERITANCE_DEPTH)).syscalls).toEqual([allowRead]);
    expect(resolve("p0", chain(MAX_INHERITANCE_DEPTH + 1))).toEqual({
      ok: false,
      reason: "InvalidInheritance",
      message: `SeccompProfile "p0": spec.baseProfileName: the inheritance chain is deeper than ${MAX_INHERITANCE_DEPTH} profiles (p0 -> p1 -> p2 -> ... -> p${MAX_INHERITANCE_DEPTH}): inherit from a profile nearer to the root`,
    });
    // Hostile: a cycle longer than the limit is refused too, and does not loop.
    const ring = chain(40);
    ring.p39 = { baseProfileName: "p0" };
    expect(resolve("p5", ring)).toMatchObject({ ok: false, reason: "InvalidInheritance" });
    // The second profile of a too-deep chain is at the limit again only from p1 onwards.
    expect(resolve("p1", chain(MAX_INHERITANCE_DEPTH + 1))).toMatchObject({ ok: true });
  });

  it("resolves the same with a memo shared by a whole pass, in any order", () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat(MAX_INHERITANCE_DEPTH), { minLength: 1, maxLength: 30 }),
        fc.array(fc.nat(29), { maxLength: 30 }),
        (parents, order) => {
          // Profile i inherits from profile i - 1 - parents[i] when that exists, else from runtime/default.
          const specs = new Map<string, SeccompProfileSpec>(
            parents.map((back, i): [string, SeccompProfileSpec] => [
              `p${i}`,
              {
                baseProfileName: i - 1 - back >= 0 ? `p${i - 1 - back}` : "runtime/default",
                syscalls: [{ names: [[...KNOWN_SYSCALLS][i] ?? "read"], action: "SCMP_ACT_LOG" }],
              },
            ]),
          );
          const memo = new Map();
          for (const i of [...order.filter((i) => i < parents.length), ...parents.keys()]) {
            const name = `p${i}`;
            expect(resolveSeccompProfile(name, specs, memo)).toEqual(resolveSeccompProfile(name, specs));
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it("rejects an errno inherited onto an action that takes none", () => {
    const profiles: Record<string, SeccompProfileSpec> = {
      base: { defaultAction: "SCMP_ACT_KILL" },
      child: { baseProfileName: "base", defaultErrnoRet: 1 },
    };
    expect(resolve("child", profiles)).toMatchObject({ ok: false, reason: "InvalidInheritance" });
  });
});

describe("renderSeccompForNode", () => {
  const base: ResolvedSeccomp = { defaultAction: "SCMP_ACT_ERRNO", syscalls: [allowRead] };

  it("lists the node's architectures when the profile lists none", () => {
    expect(renderSeccompForNode(base, "amd64").architectures).toEqual([
      "SCMP_ARCH_X86_64",
      "SCMP_ARCH_X86",
      "SCMP_ARCH_X32",
    ]);
    expect(renderSeccompForNode(base, "arm64").architectures).toEqual(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]);
    expect(renderSeccompForNode(base, undefined).architectures).toBeUndefined();
    expect(renderSeccompForNode(base, "sparc64").architectures).toBeUndefined();
  });

  it("narrows the profile's architectures to the node's", () => {
    const multi = { ...base, architectures: ["SCMP_ARCH_AARCH64", "SCMP_ARCH_X86_64"] } as ResolvedSeccomp;
    expect(renderSeccompForNode(multi, "amd64").architectures).toEqual(["SCMP_ARCH_X86_64"]);
    expect(renderSeccompForNode(multi, "arm64").architectures).toEqual(["SCMP_ARCH_AARCH64"]);
    expect(renderSeccompForNode(multi, undefined).architectures).toEqual([
      "SCMP_ARCH_AARCH64",
      "SCMP_ARCH_X86_64",
    ]);
  });

  it("moves runtime/default's clone flag check to argument 1 on s390x only", () => {
    const clone = (arch: string) =>
      renderSeccompForNode(RUNTIME_DEFAULT_SECCOMP, arch).syscalls.find(
        (rule) => rule.names[0] === "clone" && rule.args !== undefined,
      );
    expect(clone("amd64")?.args?.[0]?.index).toBe(0);
    expect(clone("s390x")?.args?.[0]?.index).toBe(1);
  });

  it("writes the exact expected file", () => {
    const spec: ResolvedSeccomp = {
      syscalls: [
        {
          args: [{ op: "SCMP_CMP_EQ", value: 1, index: 0 }],
          action: "SCMP_ACT_ALLOW",
          names: ["personality"],
        },
      ],
      defaultErrnoRet: 1,
      defaultAction: "SCMP_ACT_ERRNO",
    };
    expect(serializeSeccomp(renderSeccompForNode(spec, "riscv64"))).toBe(
      `{
  "defaultAction": "SCMP_ACT_ERRNO",
  "defaultErrnoRet": 1,
  "architectures": [
    "SCMP_ARCH_RISCV64"
  ],
  "syscalls": [
    {
      "names": [
        "personality"
      ],
      "action": "SCMP_ACT_ALLOW",
      "args": [
        {
          "index": 0,
          "value": 1,
          "op": "SCMP_CMP_EQ"
        }
      ]
    }
  ]
}
`,
    );
  });
});

// Any spec the schema accepts, built from the schema's own vocabularies.
const syscallName = fc.constantFrom(...KNOWN_SYSCALLS);
const errnoAction = fc.constantFrom("SCMP_ACT_ERRNO" as const, "SCMP_ACT_TRACE" as const);
const otherAction = fc.constantFrom(
  ...SECCOMP_ACTIONS.filter((a) => !["SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_NOTIFY"].includes(a)),
);
const arg = fc.record(
  {
    index: fc.integer({ min: 0, max: 5 }),
    value: fc.maxSafeNat(),
    valueTwo: fc.maxSafeNat(),
    op: fc.constantFrom(...SECCOMP_OPERATORS),
  },
  { requiredKeys: ["index", "value", "op"] },
);
const rule = fc.oneof(
  fc.record(
    {
      names: fc.array(syscallName, { minLength: 1, maxLength: 4 }),
      action: errnoAction,
      errnoRet: fc.integer({ min: 0, max: 4095 }),
      args: fc.array(arg, { maxLength: 6 }),
    },
    { requiredKeys: ["names", "action"] },
  ),
  fc.record(
    {
      names: fc.array(syscallName, { minLength: 1, maxLength: 4 }),
      action: otherAction,
      args: fc.array(arg, { maxLength: 6 }),
    },
    { requiredKeys: ["names", "action"] },
  ),
);
const spec = fc.record(
  {
    defaultAction: otherAction,
    architectures: fc.uniqueArray(fc.constantFrom(...SCMP_ARCHES), { maxLength: 4 }),
    flags: fc.uniqueArray(fc.constantFrom(...SECCOMP_FLAGS)),
    syscalls: fc.array(rule, { maxLength: 8 }),
  },
  { requiredKeys: ["defaultAction"] },
);
const nodeArch = fc.constantFrom(
  undefined,
  "amd64",
  "arm64",
  "arm",
  "riscv64",
  "ppc64le",
  "s390x",
  "unknown",
);

/** The same value with every object's keys in reverse order. */
function reverseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reverseKeys);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value)
      .reverse()
      .map(([key, field]) => [key, reverseKeys(field)]),
  );
}

describe("rendering properties", () => {
  it("accepts every generated spec (the generators stay honest)", () => {
    fc.assert(
      fc.property(spec, (s) => void SeccompProfileSpecSchema.parse(s)),
      { numRuns: 50 },
    );
  });

  it("always renders plain OCI data the schema accepts, for any node", () => {
    fc.assert(
      fc.property(spec, nodeArch, (s, arch) => {
        const rendered = renderSeccompForNode(resolved("p", { p: s }), arch);
        expect(LinuxSeccompSchema.parse(JSON.parse(serializeSeccomp(rendered)))).toEqual(rendered);
      }),
      { numRuns: 50 },
    );
  });

  it("serializes the same way whatever the key order of the input", () => {
    fc.assert(
      fc.property(spec, nodeArch, (s, arch) => {
        const reversed = reverseKeys(s) as SeccompProfileSpec;
        expect(serializeSeccomp(renderSeccompForNode(resolved("p", { p: reversed }), arch))).toBe(
          serializeSeccomp(renderSeccompForNode(resolved("p", { p: s }), arch)),
        );
        expect(seccompProfileVersion(resolved("p", { p: reversed }))).toBe(
          seccompProfileVersion(resolved("p", { p: s })),
        );
      }),
      { numRuns: 50 },
    );
  });

  it("gives a version that changes with the content, never with nodeSelector or disabled", () => {
    fc.assert(
      fc.property(spec, (s) => {
        const version = seccompProfileVersion(resolved("p", { p: s }));
        expect(
          seccompProfileVersion(resolved("p", { p: { ...s, nodeSelector: { x: "y" }, disabled: true } })),
        ).toBe(version);
        const changed = {
          ...s,
          syscalls: [...(s.syscalls ?? []), { names: ["read"], action: "SCMP_ACT_LOG" as const }],
        };
        expect(seccompProfileVersion(resolved("p", { p: changed }))).not.toBe(version);
      }),
      { numRuns: 50 },
    );
  });

  it("changes a child's version when its base changes", () => {
    const child: SeccompProfileSpec = { baseProfileName: "base" };
    const v1 = seccompProfileVersion(resolved("child", { child, base: { defaultAction: "SCMP_ACT_ERRNO" } }));
    const v2 = seccompProfileVersion(resolved("child", { child, base: { defaultAction: "SCMP_ACT_KILL" } }));
    expect(v1).not.toBe(v2);
  });
});
