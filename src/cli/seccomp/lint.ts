// Findings about a seccomp profile that a reviewer should see before it reaches a cluster: allowances
// that undo container isolation, names no kernel knows, and rules that can never match. Pure; the CLI
// prints them and turns them into an exit code (docs/adr/0041-lint-rules.md).

import { AF_VSOCK, CLONE_NAMESPACE_FLAGS, RUNTIME_DEFAULT_PERSONALITIES } from "../../api/runtime-default.ts";
import {
  isAllowingAction,
  type LinuxSeccomp,
  type SeccompArg,
  type SeccompSyscall,
} from "../../api/seccomp.ts";
import { isKnownSyscall } from "../../api/syscalls.ts";
import {
  type Finding,
  type Fix,
  type LintRule,
  type PatchOperation,
  SECCOMP_LINT_RULES,
  type Severity,
} from "../findings.ts";

export type { Finding, Fix, LintRule, PatchOperation, Severity };

/** The seccomp rules; src/cli/findings.ts has every rule, AppArmor's too. */
export const LINT_RULES = SECCOMP_LINT_RULES;

type AddFinding = (rule: LintRule, severity: Severity, path: string, message: string, fix: Fix) => void;

/**
 * Patch operations that take `name` (names[n] of rule r) out of its rule and give it `replacements`
 * instead: a rule with only that name is replaced (or removed), so no rule is left without names.
 */
function takeNameOut(
  seccomp: LinuxSeccomp,
  r: number,
  n: number,
  replacements: readonly SeccompSyscall[] = [],
): PatchOperation[] {
  const rule = seccomp.syscalls[r];
  const [first, ...rest] = replacements;
  const ops: PatchOperation[] =
    rule !== undefined && rule.names.length === 1
      ? [
          first === undefined
            ? { op: "remove", path: `/syscalls/${r}` }
            : { op: "replace", path: `/syscalls/${r}`, value: first },
        ]
      : [
          { op: "remove", path: `/syscalls/${r}/names/${n}` },
          ...(first === undefined ? [] : [{ op: "add" as const, path: "/syscalls/-", value: first }]),
        ];
  return [...ops, ...rest.map((value) => ({ op: "add" as const, path: "/syscalls/-", value }))];
}

/** Where a finding on a name points: rule r, name n (undefined for a finding on defaultAction). */
interface NameSite {
  r: number;
  n: number;
}

/** Calls that give a container the host: kernel code, mounts, other processes, the kernel keyring. */
const DANGEROUS: Readonly<Record<string, string>> = {
  bpf: "loads programs into the kernel",
  mount: "mounts file systems",
  umount2: "unmounts file systems",
  umount: "unmounts file systems",
  fsopen: "mounts file systems (new mount API)",
  fsmount: "mounts file systems (new mount API)",
  fsconfig: "configures mounts (new mount API)",
  fspick: "reconfigures mounts (new mount API)",
  move_mount: "moves mounts",
  open_tree: "clones mount trees",
  mount_setattr: "changes mount flags",
  ptrace: "inspects and controls other processes",
  kexec_load: "replaces the running kernel",
  kexec_file_load: "replaces the running kernel",
  init_module: "loads kernel modules",
  finit_module: "loads kernel modules",
  delete_module: "unloads kernel modules",
  keyctl: "reaches the kernel keyring, which is not namespaced",
  add_key: "reaches the kernel keyring, which is not namespaced",
  request_key: "reaches the kernel keyring, which is not namespaced",
  userfaultfd: "is a common kernel-exploit primitive",
};

/** unshare and setns take namespace flags directly; unfiltered, a container can enter or build namespaces. */
const NAMESPACE_CALLS = new Set(["unshare", "setns"]);

// CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET.
const CLONE_NEW_FLAGS = [0x20000, 0x2000000, 0x4000000, 0x8000000, 0x10000000, 0x20000000, 0x40000000];
const SIGCHLD = 17;

/**
 * Whether one argument condition holds for the 64-bit value `x` as libseccomp tests it (BigInt: JS
 * bitwise ops are 32-bit). SCMP_CMP_MASKED_EQ masks both sides: (x & mask) == (valueTwo & mask), so bits
 * of valueTwo outside the mask are ignored (measured with runc in test/integration/cli.test.ts).
 */
export function conditionHolds(arg: SeccompArg, x: bigint): boolean {
  const value = BigInt(arg.value);
  switch (arg.op) {
    case "SCMP_CMP_NE":
      return x !== value;
    case "SCMP_CMP_LT":
      return x < value;
    case "SCMP_CMP_LE":
      return x <= value;
    case "SCMP_CMP_EQ":
      return x === value;
    case "SCMP_CMP_GE":
      return x >= value;
    case "SCMP_CMP_GT":
      return x > value;
    case "SCMP_CMP_MASKED_EQ":
      return (x & value) === (BigInt(arg.valueTwo ?? 0) & value);
  }
}

/** Whether a rule tests one argument more than once. */
function repeatsAnArgument(rule: SeccompSyscall): boolean {
  const indexes = (rule.args ?? []).map((a) => a.index);
  return new Set(indexes).size !== indexes.length;
}

/**
 * The rules runc hands libseccomp for one profile rule (libcontainer/seccomp, matchCall): the rule as
 * written, unless it tests an argument more than once. libseccomp cannot AND two conditions on one
 * argument, so runc then adds every condition as a rule of its own: the conditions are ORed, those on
 * other arguments included (docs/adr/0042-seccomp-from-published-sources.md; test/integration/cli.test.ts
 * shows runc doing it).
 */
export function rulesAsRuncAddsThem(rule: SeccompSyscall): SeccompSyscall[] {
  if (!repeatsAnArgument(rule)) return [rule];
  return (rule.args ?? []).map((arg) => ({ ...rule, args: [arg] }));
}

/**
 * Whether a rule can match a call whose argument `index` is `x`, as runc applies it: some rule it becomes
 * has all its conditions on that argument hold (those on other arguments can be met by some call).
 */
function ruleAdmits(rule: SeccompSyscall, index: number, x: number): boolean {
  return rulesAsRuncAddsThem(rule).some((added) =>
    (added.args ?? []).filter((a) => a.index === index).every((a) => conditionHolds(a, BigInt(x))),
  );
}

function isUnconditional(rule: SeccompSyscall): boolean {
  return (rule.args ?? []).length === 0;
}

/** s390x passes clone's flags in argument 1; every other architecture in argument 0. */
function cloneFlagsIndex(seccomp: LinuxSeccomp): number {
  const arches = seccomp.architectures ?? [];
  return arches.length > 0 && arches.every((a) => a === "SCMP_ARCH_S390X" || a === "SCMP_ARCH_S390") ? 1 : 0;
}

/** What an allowing rule lets through that it should not, for one syscall name. */
function allowanceFindings(
  seccomp: LinuxSeccomp,
  rule: SeccompSyscall,
  name: string,
  site: NameSite | undefined,
  add: AddFinding,
): void {
  const path = site === undefined ? "defaultAction" : `syscalls[${site.r}].names[${site.n}]`;
  const conditional = isUnconditional(rule) ? "" : " (under conditions, which do not make it safe)";
  // Out of its rule, replaced by `rules`; for an allow-by-default profile, `rules` added as they are.
  const replace = (...rules: SeccompSyscall[]): PatchOperation[] =>
    site === undefined
      ? rules.map((value) => ({ op: "add", path: "/syscalls/-", value }))
      : takeNameOut(seccomp, site.r, site.n, rules);
  const deny: SeccompSyscall = { names: [name], action: "SCMP_ACT_ERRNO", errnoRet: 1 };
  const removeOrDeny = (): Fix =>
    site === undefined
      ? { action: "deny-syscall", description: `add a rule that denies ${name}`, patch: replace(deny) }
      : { action: "remove-syscall", description: `remove ${name} from this rule`, patch: replace() };
  const { names: _names, args: _args, ...ruleAction } = rule;
  if (DANGEROUS[name])
    add(
      "dangerous-syscall",
      "error",
      path,
      `allows ${name}, which ${DANGEROUS[name]}${conditional}`,
      removeOrDeny(),
    );
  if (NAMESPACE_CALLS.has(name) && isUnconditional(rule))
    add(
      "namespace-creation",
      "error",
      path,
      `allows ${name} without argument filters: the container can create or join namespaces`,
      removeOrDeny(),
    );
  if (name === "clone") {
    const index = cloneFlagsIndex(seccomp);
    const filtered: SeccompSyscall = {
      ...ruleAction,
      names: ["clone"],
      args: [{ index, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ" }],
    };
    if (CLONE_NEW_FLAGS.some((flag) => ruleAdmits(rule, index, flag | SIGCHLD)))
      add(
        "namespace-creation",
        "error",
        path,
        `allows clone with CLONE_NEW* flags: filter argument ${index} with SCMP_CMP_MASKED_EQ value ${CLONE_NAMESPACE_FLAGS} valueTwo 0, as runtime/default does`,
        site === undefined
          ? {
              action: "deny-by-default",
              description:
                "an allow-by-default profile cannot deny only clone's namespace flags: make defaultAction deny and allow clone as runtime/default does",
              patch: [],
            }
          : {
              action: "restrict-arguments",
              description: `allow clone only when argument ${index} has no CLONE_NEW* flag (SCMP_CMP_MASKED_EQ value ${CLONE_NAMESPACE_FLAGS} valueTwo 0), as runtime/default does`,
              patch: replace(filtered),
            },
      );
  }
  if (name === "clone3")
    add(
      "namespace-creation",
      "error",
      path,
      "allows clone3, whose flags seccomp cannot read (they sit behind a pointer): use SCMP_ACT_ERRNO with errnoRet 38 (ENOSYS) so libc falls back to a filtered clone",
      {
        action: "return-enosys",
        description:
          "make clone3 fail with ENOSYS (SCMP_ACT_ERRNO, errnoRet 38), so libc falls back to clone",
        patch: replace({ names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: 38 }),
      },
    );
  if (name === "personality" && isUnconditional(rule))
    add(
      "personality-unfiltered",
      "warning",
      path,
      `allows personality with any persona; runtime/default allows only ${RUNTIME_DEFAULT_PERSONALITIES.map((p) => `0x${p.toString(16)}`).join(", ")}`,
      site === undefined
        ? {
            action: "deny-by-default",
            description:
              "an allow-by-default profile cannot allow only some personas: make defaultAction deny and allow runtime/default's personas",
            patch: [],
          }
        : {
            action: "restrict-arguments",
            description:
              "allow personality only with runtime/default's personas (one rule each, SCMP_CMP_EQ on argument 0)",
            patch: replace(
              ...RUNTIME_DEFAULT_PERSONALITIES.map(
                (value): SeccompSyscall => ({
                  ...ruleAction,
                  names: ["personality"],
                  args: [{ index: 0, value, op: "SCMP_CMP_EQ" }],
                }),
              ),
            ),
          },
    );
  if (name === "socket" && ruleAdmits(rule, 0, AF_VSOCK))
    add(
      "socket-family",
      "warning",
      path,
      `allows socket for AF_VSOCK (${AF_VSOCK}), which reaches the hypervisor host and which runtime/default and Docker's default profile block: add {index: 0, value: ${AF_VSOCK}, op: SCMP_CMP_NE}`,
      site === undefined
        ? {
            action: "deny-syscall",
            description: `add a rule that denies socket for family ${AF_VSOCK}`,
            patch: replace({ ...deny, args: [{ index: 0, value: AF_VSOCK, op: "SCMP_CMP_EQ" }] }),
          }
        : isUnconditional(rule)
          ? {
              action: "restrict-arguments",
              description: `allow socket only for families other than ${AF_VSOCK} ({index: 0, value: ${AF_VSOCK}, op: SCMP_CMP_NE})`,
              patch: replace({
                ...ruleAction,
                names: ["socket"],
                args: [{ index: 0, value: AF_VSOCK, op: "SCMP_CMP_NE" }],
              }),
            }
          : {
              action: "restrict-arguments",
              description: `change this rule's conditions on argument 0 so that family ${AF_VSOCK} does not pass (a second condition on argument 0 would be ORed)`,
              patch: [],
            },
    );
}

const MAX_U64 = (1n << 64n) - 1n;

/**
 * A value of one argument that meets every condition (64-bit), or undefined when none does. The
 * candidates are the values where a condition's truth can change (each bound and its neighbours, each
 * masked value with the bits outside its mask clear or set), which is enough for these operators.
 */
function valueMeetingAll(conditions: readonly SeccompArg[]): bigint | undefined {
  const candidates = new Set<bigint>([0n, MAX_U64]);
  for (const c of conditions) {
    const value = BigInt(c.value);
    if (c.op === "SCMP_CMP_MASKED_EQ") {
      const expected = BigInt(c.valueTwo ?? 0);
      const outside = ~value & MAX_U64;
      candidates.add(expected);
      candidates.add(expected | outside);
      candidates.add(expected | (outside & -outside));
    } else
      for (const near of [value - 1n, value, value + 1n])
        if (near >= 0n && near <= MAX_U64) candidates.add(near);
  }
  return [...candidates].find((x) => conditions.every((c) => conditionHolds(c, x)));
}

/** A call both rules match, as `argument i = x` (or "every call"), or undefined when none exists. */
function overlap(a: SeccompSyscall, b: SeccompSyscall): string | undefined {
  const conditions = [...(a.args ?? []), ...(b.args ?? [])];
  const example: string[] = [];
  for (const index of new Set(conditions.map((c) => c.index))) {
    const x = valueMeetingAll(conditions.filter((c) => c.index === index));
    if (x === undefined) return undefined;
    example.push(`argument ${index} = ${x}`);
  }
  return example.length === 0 ? "every call" : example.join(", ");
}

function outcome(rule: SeccompSyscall): string {
  return rule.errnoRet === undefined ? rule.action : `${rule.action} ${rule.errnoRet}`;
}

/**
 * Conditional rules for one name whose actions differ and whose conditions a call can meet together.
 * libseccomp merges a syscall's rules into one decision tree by argument and value, not in the order
 * written, so the profile's order does not say which rule decides such a call (docs/adr/0042).
 */
function overlappingRules(
  seccomp: LinuxSeccomp,
  applies: (name: string, r: number) => boolean,
): { name: string; first: number; second: number; call: string }[] {
  const found: { name: string; first: number; second: number; call: string }[] = [];
  const seen = new Set<string>();
  seccomp.syscalls.forEach((a, i) => {
    seccomp.syscalls.forEach((b, j) => {
      if (j <= i || isUnconditional(a) || isUnconditional(b) || outcome(a) === outcome(b)) return;
      for (const name of a.names.filter((n) => b.names.includes(n) && applies(n, i) && applies(n, j))) {
        const call = rulesAsRuncAddsThem(a)
          .flatMap((x) => rulesAsRuncAddsThem(b).map((y) => overlap(x, y)))
          .find((c) => c !== undefined);
        const key = `${name}:${i}:${j}`;
        if (call !== undefined && !seen.has(key)) {
          seen.add(key);
          found.push({ name, first: i, second: j, call });
        }
      }
    });
  });
  return found;
}

export interface LintOptions {
  /**
   * The profile has a baseProfileName: its rules replace the base's rules for the names they list, so
   * a rule with the default action is a deliberate denial of what the base allows, not a no-op.
   */
  inheritsRules?: boolean;
}

export function lintSeccomp(seccomp: LinuxSeccomp, options: LintOptions = {}): Finding[] {
  const findings: Finding[] = [];
  const add: AddFinding = (rule, severity, path, message, fix) =>
    findings.push({ rule, severity, path, message, fix });
  // The rule that decides a name for every call. Measured with runc 1.1.5 / libseccomp: the first
  // unconditional rule for a name wins over later unconditional ones, and over conditional rules for
  // the name wherever they stand (docs/adr/0041-lint-rules.md). Other rules for that name never apply.
  const decidedBy = new Map<string, number>();
  seccomp.syscalls.forEach((rule, r) => {
    if (isUnconditional(rule))
      for (const name of rule.names) if (!decidedBy.has(name)) decidedBy.set(name, r);
  });

  seccomp.syscalls.forEach((rule, r) => {
    rule.names.forEach((name, n) => {
      const path = `syscalls[${r}].names[${n}]`;
      if (!isKnownSyscall(name))
        add(
          "unknown-syscall",
          "error",
          path,
          `unknown syscall "${name}": no kernel that libseccomp knows has it, so the runtime ignores it`,
          {
            action: "remove-syscall",
            description: `remove "${name}", or correct it to the syscall meant`,
            patch: takeNameOut(seccomp, r, n),
          },
        );
      const decider = decidedBy.get(name);
      const applies = decider === undefined || decider === r;
      if (!applies)
        add(
          "never-matches",
          "warning",
          path,
          `${name} is decided for every call by the unconditional rule syscalls[${decider}]: this rule never applies to it`,
          {
            action: "remove-syscall",
            description: `remove ${name} from this rule, or from syscalls[${decider}] if this rule is the one meant`,
            patch: takeNameOut(seccomp, r, n),
          },
        );
      if (isAllowingAction(rule.action) && applies) allowanceFindings(seccomp, rule, name, { r, n }, add);
    });

    if (
      !options.inheritsRules &&
      rule.action === seccomp.defaultAction &&
      (rule.errnoRet ?? seccomp.defaultErrnoRet) === seccomp.defaultErrnoRet
    )
      add(
        "never-matches",
        "warning",
        `syscalls[${r}]`,
        `rule does the same as defaultAction (${seccomp.defaultAction}): it changes nothing`,
        {
          action: "remove-rule",
          description: "remove this rule",
          patch: [{ op: "remove", path: `/syscalls/${r}` }],
        },
      );
    if (repeatsAnArgument(rule)) {
      const repeated = [...new Set((rule.args ?? []).map((a) => a.index))].filter(
        (index) => (rule.args ?? []).filter((a) => a.index === index).length > 1,
      );
      add(
        "conditions-ored",
        isAllowingAction(rule.action) ? "error" : "warning",
        `syscalls[${r}].args`,
        `tests argument ${repeated.join(", ")} more than once, so runc adds each condition as a rule of its own: the ${rule.args?.length} conditions are ORed, not ANDed, and the rule matches a call that meets any one of them. Split it into rules that each test an argument once, or use SCMP_CMP_MASKED_EQ`,
        {
          action: "split-rule",
          description: "split the rule into rules that each test an argument once, or use SCMP_CMP_MASKED_EQ",
          patch: [],
        },
      );
    }
    rule.args?.forEach((arg, a) => {
      if (arg.op !== "SCMP_CMP_MASKED_EQ") return;
      const mask = BigInt(arg.value);
      const expected = BigInt(arg.valueTwo ?? 0);
      // libseccomp compares (arg & mask) with (valueTwo & mask): with mask 0 both sides are 0 for every
      // value, and bits of valueTwo outside the mask are dropped rather than making the rule impossible.
      if (mask === 0n)
        add(
          "condition-always-true",
          "warning",
          `syscalls[${r}].args[${a}]`,
          "SCMP_CMP_MASKED_EQ with mask 0 holds for every value: the condition filters nothing",
          {
            action: "remove-condition",
            description: "remove the condition (it filters nothing), or give it the mask meant",
            patch: [{ op: "remove", path: `/syscalls/${r}/args/${a}` }],
          },
        );
      else if ((expected & ~mask) !== 0n)
        add(
          "masked-bits-ignored",
          "warning",
          `syscalls[${r}].args[${a}]`,
          `valueTwo ${arg.valueTwo} has bits outside the mask ${arg.value}, which libseccomp ignores: the condition holds whenever (arg & ${arg.value}) == ${expected & mask}, not never`,
          {
            action: "clear-masked-bits",
            description: `write valueTwo ${expected & mask}, what libseccomp compares, or widen the mask if the other bits were meant`,
            patch: [
              { op: "replace", path: `/syscalls/${r}/args/${a}/valueTwo`, value: Number(expected & mask) },
            ],
          },
        );
    });
  });

  const applies = (name: string, r: number) => {
    const decider = decidedBy.get(name);
    return decider === undefined || decider === r;
  };
  for (const { name, first, second, call } of overlappingRules(seccomp, applies)) {
    const [a, b] = [seccomp.syscalls[first], seccomp.syscalls[second]] as [SeccompSyscall, SeccompSyscall];
    add(
      "conditions-overlap",
      "warning",
      `syscalls[${second}].names[${b.names.indexOf(name)}]`,
      `${name}: syscalls[${first}] (${outcome(a)}) and syscalls[${second}] (${outcome(b)}) both match a call with ${call}; libseccomp does not apply rules in the order written, so the order does not decide which one wins. Make their conditions exclusive`,
      {
        action: "make-conditions-exclusive",
        description: `change the conditions of syscalls[${first}] or syscalls[${second}] so that no call meets both`,
        patch: [],
      },
    );
  }

  if (isAllowingAction(seccomp.defaultAction)) {
    add(
      "default-allow",
      "warning",
      "defaultAction",
      `${seccomp.defaultAction}: every syscall no rule names is allowed`,
      {
        action: "deny-by-default",
        description:
          "make defaultAction SCMP_ACT_ERRNO and allow the calls the program makes (lockstep record lists them)",
        patch: [],
      },
    );
    const defaultRule: SeccompSyscall = { names: [], action: seccomp.defaultAction };
    for (const name of [
      ...Object.keys(DANGEROUS),
      ...NAMESPACE_CALLS,
      "clone3",
      "clone",
      "personality",
      "socket",
    ])
      if (!seccomp.syscalls.some((rule) => rule.names.includes(name)))
        allowanceFindings(seccomp, defaultRule, name, undefined, add);
  }
  return findings;
}
