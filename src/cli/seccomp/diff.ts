// What one seccomp profile allows that another does not, by syscall name, on a node of one
// architecture. Pure; `lockstep diff`.

import { RUNTIME_DEFAULT_ARCH_SYSCALLS } from "../../api/runtime-default.ts";
import { isAllowingAction, type LinuxSeccomp } from "../../api/seccomp.ts";
import { KNOWN_SYSCALLS } from "../../api/syscalls.ts";
import { allowedSyscalls } from "../record/seccomp-profile.ts";

export interface SeccompDiff {
  onlyA: string[];
  onlyB: string[];
  /** How many syscalls both allow. */
  both: number;
}

/** Prefixes of calls that exist only on one architecture family, by `kubernetes.io/arch`. */
const ARCH_PREFIXES: Readonly<Record<string, readonly string[]>> = {
  arm_: ["arm", "arm64"],
  s390_: ["s390x"],
  riscv_: ["riscv64"],
};

/**
 * Whether `name` can be a call on a node of `nodeArch` (undefined: any node). The syscall table is one
 * flat list without architectures (src/api/syscalls.ts), so this knows the calls runtime/default lists
 * per architecture (containerd's own table: breakpoint, cacheflush and set_tls on ARM, arch_prctl on
 * amd64, ...) and the arm_, s390_ and riscv_ families; a name outside both is kept.
 */
export function existsOnArch(name: string, nodeArch: string | undefined): boolean {
  if (nodeArch === undefined) return true;
  const prefix = Object.keys(ARCH_PREFIXES).find((p) => name.startsWith(p));
  if (prefix !== undefined) return (ARCH_PREFIXES[prefix] ?? []).includes(nodeArch);
  const arches = Object.entries(RUNTIME_DEFAULT_ARCH_SYSCALLS)
    .filter(([, names]) => names.includes(name))
    .map(([arch]) => arch);
  return arches.length === 0 || arches.includes(nodeArch);
}

/** The names a profile lets through: its allow rules, or, for an allow-by-default profile, all but its denials. */
export function effectiveAllowSet(seccomp: LinuxSeccomp): Set<string> {
  if (isAllowingAction(seccomp.defaultAction)) {
    const denied = new Set(
      seccomp.syscalls
        .filter((r) => !isAllowingAction(r.action) && !(r.args && r.args.length > 0))
        .flatMap((r) => r.names),
    );
    return new Set([...KNOWN_SYSCALLS].filter((n) => !denied.has(n)));
  }
  return allowedSyscalls(seccomp);
}

/** What each profile allows that the other does not, on a node of `nodeArch` (undefined: every call). */
export function diffSeccomp(a: LinuxSeccomp, b: LinuxSeccomp, nodeArch?: string): SeccompDiff {
  const onNode = (set: Set<string>) => new Set([...set].filter((n) => existsOnArch(n, nodeArch)));
  const [allowA, allowB] = [onNode(effectiveAllowSet(a)), onNode(effectiveAllowSet(b))];
  return {
    onlyA: [...allowA].filter((n) => !allowB.has(n)).sort(),
    onlyB: [...allowB].filter((n) => !allowA.has(n)).sort(),
    both: [...allowA].filter((n) => allowB.has(n)).length,
  };
}
