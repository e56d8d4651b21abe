import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { renderSeccompForNode } from "./render-seccomp.ts";
import {
  RUNTIME_DEFAULT_ARCH_SYSCALLS,
  RUNTIME_DEFAULT_CAPABILITIES,
  RUNTIME_DEFAULT_SECCOMP,
  RUNTIME_DEFAULT_SOURCE,
} from "./runtime-default.ts";
import { LinuxSeccompSchema } from "./seccomp.ts";
import { scmpArchesForNode } from "./syscalls.ts";

// What containerd's own code produced (tools/containerd-default) and what it decides by architecture;
// test/fixtures/seccomp/README.md records both sources.
const fixture = (name: string) =>
  JSON.parse(readFileSync(`${import.meta.dirname}/../../test/fixtures/seccomp/${name}`, "utf8"));
const amd64 = fixture(`containerd-${RUNTIME_DEFAULT_SOURCE.version}-default-amd64.json`);
const byArch = fixture(`containerd-${RUNTIME_DEFAULT_SOURCE.version}-by-arch.json`);

/**
 * containerd's JSON in Lockstep's spelling: Go writes `args: []` on unconditional rules and omits a zero
 * valueTwo (which SCMP_CMP_MASKED_EQ compares with), and containerd leaves defaultErrnoRet to runc's
 * EPERM default.
 */
function normalized(profile: { syscalls: { args?: { op: string; valueTwo?: number }[] }[] }) {
  return LinuxSeccompSchema.parse({
    defaultErrnoRet: 1,
    ...profile,
    syscalls: profile.syscalls.map(({ args, ...rule }) =>
      args === undefined || args.length === 0
        ? rule
        : {
            ...rule,
            args: args.map((arg) => (arg.op === "SCMP_CMP_MASKED_EQ" ? { valueTwo: 0, ...arg } : arg)),
          },
    ),
  });
}

describe(`runtime/default is containerd ${RUNTIME_DEFAULT_SOURCE.version}'s default`, () => {
  it("keeps every architecture's calls for a node whose architecture is unknown or unlabelled", () => {
    for (const arch of [undefined, "sparc64"])
      expect(renderSeccompForNode(RUNTIME_DEFAULT_SECCOMP, arch).syscalls).toEqual(
        RUNTIME_DEFAULT_SECCOMP.syscalls,
      );
  });

  it("for containerd's default capability set", () => {
    expect(RUNTIME_DEFAULT_CAPABILITIES).toEqual(amd64.capabilities);
  });

  it("rule for rule on an amd64 node, as containerd's code built it there", () => {
    expect(renderSeccompForNode(RUNTIME_DEFAULT_SECCOMP, "amd64")).toEqual(normalized(amd64.profile));
  });

  it("with each architecture's own calls, architectures and clone flag argument", () => {
    expect(RUNTIME_DEFAULT_ARCH_SYSCALLS).toEqual(byArch.allowedOnlyOn);
    const archSpecific = new Set(Object.values<string[]>(byArch.allowedOnlyOn).flat());
    for (const [arch, containerdArches] of Object.entries<string[]>(byArch.architectures)) {
      const rendered = renderSeccompForNode(RUNTIME_DEFAULT_SECCOMP, arch);
      // An empty list makes runc filter the native architecture only.
      const expected = containerdArches.length > 0 ? containerdArches : [scmpArchesForNode(arch)?.[0]];
      expect(new Set(rendered.architectures), arch).toEqual(new Set(expected));
      const own = rendered.syscalls.flatMap((r) => r.names).filter((n) => archSpecific.has(n));
      expect(own.sort(), arch).toEqual([...(byArch.allowedOnlyOn[arch] ?? [])].sort());
      const clone = rendered.syscalls.find((r) => r.names.includes("clone"));
      expect(clone?.args?.[0]?.index, arch).toBe(
        byArch.cloneFlagsArgument[arch] ?? byArch.cloneFlagsArgument.other,
      );
    }
  });
});
