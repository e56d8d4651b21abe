// From SeccompProfile specs to the exact bytes the agent writes on a node. Pure: the agent calls it
// with the profiles from its informer cache and its Node's `kubernetes.io/arch` label.

import { RUNTIME_DEFAULT_PROFILE_NAME, SECCOMP_PROFILE_KIND } from "./constants.ts";
import { profileVersion } from "./labels.ts";
import { MAX_INHERITANCE_DEPTH } from "./limits.ts";
import { RUNTIME_DEFAULT_SECCOMP, runtimeDefaultRuleForNode } from "./runtime-default.ts";
import {
  actionTakesErrno,
  ERRNO_ACTIONS_PHRASE,
  type LinuxSeccomp,
  type SeccompProfileSpec,
  type SeccompSyscall,
} from "./seccomp.ts";
import { scmpArchesForNode } from "./syscalls.ts";

/** A profile with its inheritance chain applied: plain OCI data, the same for every node. */
export type ResolvedSeccomp = LinuxSeccomp;

export type SeccompResolveFailure = "NotFound" | "BaseNotFound" | "BaseCycle" | "InvalidInheritance";

export type SeccompResolution =
  | { ok: true; spec: ResolvedSeccomp }
  | { ok: false; reason: SeccompResolveFailure; message: string };

/**
 * Apply a profile's `baseProfileName` chain (which may end in the built-in `runtime/default`).
 *
 * Merge rule, applied from the root of the chain down to `name`:
 * - `defaultAction`, `architectures` and `flags` are taken from the child when it sets them, else
 *   inherited whole (lists are replaced, not merged, so a child can narrow them);
 * - `defaultErrnoRet` belongs to `defaultAction`: a child that sets its own defaultAction does not
 *   inherit the base's errno; a child that sets only defaultErrnoRet changes the inherited action's errno;
 * - `syscalls`: the child's rules take over every syscall they name. Those names are taken out of the
 *   base's rules (a base rule left with no names is dropped), then the child's rules are appended.
 *   Without this a child could not deny a call its base allows: libseccomp (and so runc) does not
 *   order rules, and a second rule for a syscall already allowed is ignored.
 */
export function resolveSeccompProfile(
  name: string,
  profilesByName: ReadonlyMap<string, SeccompProfileSpec>,
  folded: InheritanceMemo = new Map(),
): SeccompResolution {
  const chain = inheritanceChain(name, profilesByName);
  if (!chain.ok) return chain;

  // From the nearest profile of the chain already folded in this pass (every profile of a kind is
  // resolved together: without the memo a chain of n cost n^2 merges, 29 s for 2,000).
  let start = 0;
  let resolved: ResolvedSeccomp | undefined = chain.endsInRuntimeDefault
    ? RUNTIME_DEFAULT_SECCOMP
    : undefined;
  for (let i = chain.names.length - 1; i >= 0; i--) {
    const known = folded.get(chain.names[i] ?? "");
    if (known !== undefined) {
      start = i + 1;
      resolved = known.resolved;
      break;
    }
  }
  for (let i = start; i < chain.specs.length; i++) {
    resolved = inherit(resolved, chain.specs[i] as SeccompProfileSpec);
    folded.set(chain.names[i] ?? "", { resolved });
  }

  if (resolved === undefined)
    return failure("InvalidInheritance", name, "spec.defaultAction: required unless baseProfileName is set");
  const errnoRet = resolved.defaultErrnoRet;
  if (errnoRet !== undefined && !actionTakesErrno(resolved.defaultAction))
    return failure(
      "InvalidInheritance",
      name,
      `spec.defaultErrnoRet: ${ERRNO_ACTIONS_PHRASE}, but the inherited defaultAction is ${resolved.defaultAction}`,
    );
  return { ok: true, spec: resolved };
}

/**
 * Per profile name, its chain folded (before the final checks), shared by the resolutions of one pass
 * over the same specs; a fold of undefined is a chain with no defaultAction anywhere.
 */
export type InheritanceMemo = Map<string, { resolved: ResolvedSeccomp | undefined }>;

type Chain =
  | { ok: true; names: string[]; specs: SeccompProfileSpec[]; endsInRuntimeDefault: boolean }
  | { ok: false; reason: SeccompResolveFailure; message: string };

/** The names and specs from the root of the chain down to `name`, at most MAX_INHERITANCE_DEPTH of them. */
function inheritanceChain(name: string, profilesByName: ReadonlyMap<string, SeccompProfileSpec>): Chain {
  const names: string[] = [];
  const specs: SeccompProfileSpec[] = [];
  let current: string | undefined = name;
  while (current !== undefined) {
    if (names.length === MAX_INHERITANCE_DEPTH)
      return failure(
        "InvalidInheritance",
        name,
        `spec.baseProfileName: the inheritance chain is deeper than ${MAX_INHERITANCE_DEPTH} profiles (${[...names.slice(0, 3), "...", current].join(" -> ")}): inherit from a profile nearer to the root`,
      );
    if (names.includes(current))
      return failure(
        "BaseCycle",
        name,
        `spec.baseProfileName: inheritance cycle ${[...names, current].join(" -> ")}`,
      );
    const spec = profilesByName.get(current);
    if (spec === undefined)
      return current === name
        ? failure("NotFound", name, "profile not found")
        : failure(
            "BaseNotFound",
            name,
            `spec.baseProfileName: base profile ${JSON.stringify(current)} not found (${[...names, current].join(" -> ")})`,
          );
    names.push(current);
    specs.push(spec);
    if (spec.baseProfileName === RUNTIME_DEFAULT_PROFILE_NAME) break;
    current = spec.baseProfileName;
  }
  const root = specs.at(-1);
  return {
    ok: true,
    names: names.reverse(),
    specs: specs.reverse(),
    endsInRuntimeDefault: root?.baseProfileName === RUNTIME_DEFAULT_PROFILE_NAME,
  };
}

function inherit(base: ResolvedSeccomp | undefined, child: SeccompProfileSpec): ResolvedSeccomp | undefined {
  const defaultAction = child.defaultAction ?? base?.defaultAction;
  if (defaultAction === undefined) return undefined;
  const defaultErrnoRet =
    child.defaultAction !== undefined
      ? child.defaultErrnoRet
      : (child.defaultErrnoRet ?? base?.defaultErrnoRet);
  return {
    defaultAction,
    defaultErrnoRet,
    architectures: child.architectures ?? base?.architectures,
    flags: child.flags ?? base?.flags,
    syscalls: [
      ...withoutNames(base?.syscalls ?? [], namedBy(child.syscalls ?? [])),
      ...(child.syscalls ?? []),
    ],
  };
}

function namedBy(rules: readonly SeccompSyscall[]): ReadonlySet<string> {
  return new Set(rules.flatMap((rule) => rule.names));
}

function withoutNames(rules: readonly SeccompSyscall[], names: ReadonlySet<string>): SeccompSyscall[] {
  if (names.size === 0) return [...rules];
  return rules.flatMap((rule) => {
    const kept = rule.names.filter((name) => !names.has(name));
    if (kept.length === rule.names.length) return [rule];
    return kept.length === 0 ? [] : [{ ...rule, names: kept }];
  });
}

function failure(reason: SeccompResolveFailure, name: string, problem: string) {
  return {
    ok: false as const,
    reason,
    message: `${SECCOMP_PROFILE_KIND} ${JSON.stringify(name)}: ${problem}`,
  };
}

/**
 * The `linux.seccomp` object for one node, with its keys in a fixed order and nothing but OCI fields.
 *
 * Architectures: the profile's list narrowed to what the node can execute, or the node's native and
 * compat architectures when the profile lists none (or none of them apply). A node with an unknown
 * or missing `kubernetes.io/arch` gets the profile's list unchanged; runc then adds the native one.
 * The architecture-dependent rules of runtime/default become the node's own (runtimeDefaultRuleForNode).
 */
export function renderSeccompForNode(resolved: ResolvedSeccomp, nodeArch: string | undefined): LinuxSeccomp {
  const nodeArches = nodeArch === undefined ? undefined : scmpArchesForNode(nodeArch);
  let architectures = resolved.architectures === undefined ? undefined : [...new Set(resolved.architectures)];
  if (nodeArches !== undefined) {
    const usable = architectures?.filter((arch) => nodeArches.includes(arch)) ?? [];
    architectures = usable.length > 0 ? usable : [...nodeArches];
  }
  const syscalls = resolved.syscalls.flatMap((rule) => runtimeDefaultRuleForNode(rule, nodeArch) ?? []);
  return canonicalSeccomp({ ...resolved, architectures, syscalls });
}

/** A copy with keys in one fixed order and absent fields left out, so equal profiles serialize equally. */
function canonicalSeccomp(seccomp: LinuxSeccomp): LinuxSeccomp {
  return withoutUndefined({
    defaultAction: seccomp.defaultAction,
    defaultErrnoRet: seccomp.defaultErrnoRet,
    architectures: seccomp.architectures,
    flags: seccomp.flags,
    syscalls: seccomp.syscalls.map(canonicalRule),
  });
}

function canonicalRule(rule: SeccompSyscall): SeccompSyscall {
  return withoutUndefined({
    names: rule.names,
    action: rule.action,
    errnoRet: rule.errnoRet,
    args: rule.args?.map((arg) =>
      withoutUndefined({ index: arg.index, value: arg.value, valueTwo: arg.valueTwo, op: arg.op }),
    ),
  });
}

function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as T;
}

/** The exact text written to `<kubelet-root>/seccomp/lockstep/<name>.json`. */
export function serializeSeccomp(seccomp: LinuxSeccomp): string {
  return `${JSON.stringify(seccomp, null, 2)}\n`;
}

/**
 * The version label value for a resolved profile. It hashes the node-independent resolved profile,
 * not a node's rendering, so the controller (which renders for no node) and every agent agree.
 */
export function seccompProfileVersion(resolved: ResolvedSeccomp): string {
  return profileVersion(JSON.stringify(canonicalSeccomp(resolved)));
}
